"""Forty people at once (issue 18) on the built demo city: twenty clinicians of one clinic and
twenty citizens, against one person alone on the same servers in the same run. The run is
``gjh bench``'s (``gjh.bench.crowd``, where what is measured is described); here on the demo
city's copy, its figures recorded in bench-results/crowd.json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from gjh.bench import crowd
from gjh.bench.app_server import AppServer
from gjh.bench.browser import chromium
from tests.benchmarks.conftest import record
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
TIMEOUT_S = 900.0


@pytest.fixture(scope="module")
def apps(
    platform_lake: Lake, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppServer]]:
    env = {
        "LAKEHOUSE_URI": str(platform_lake.root),
        "GJH_SECRETS_DIR": str(platform_lake.root.parent / "secrets"),
    }
    with platform_lake.active():
        roster = crowd.roster(crowd.PEOPLE)
    with crowd.served(env, roster, tmp_path_factory.mktemp("crowd")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_forty_people_at_once_against_one_alone(
    browser: Browser, apps: dict[str, AppServer]
) -> None:
    result = crowd.run(browser, apps, crowd.PEOPLE, TIMEOUT_S)
    record("crowd", result)
    assert not result["errors"], result["errors"]
