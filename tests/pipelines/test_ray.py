"""Scoring on a two-node Ray cluster of this machine: the same findings as the local engine.

One cluster for the module (``tests.pipelines.raycluster``: its start is most of the module's
time). The small city's uploads are indexed and routed once; the lakehouse is then copied, and
``ai_findings`` runs on each copy, once with the local engine (two worker processes) and once
with the Ray engine (Daft reading the tables, two actors spread over the two nodes), through
the same Dagster asset and resources a deployment uses.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from lakehouse import dicom_store
from lakehouse.config import environment
from pipelines.defs.engine import Engine, from_environment
from pipelines.defs.imaging import imaging_index, imaging_routing
from pipelines.defs.resources import Imaging, Scoring
from pipelines.defs.scoring import FINDINGS, ai_findings
from tests.conftest import City
from tests.gjh.test_loopback import listening
from tests.pipelines.conftest import Lake
from tests.pipelines.raycluster import Cluster, cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLOCK = "scored_at"  # the run's own clock: the only column the two engines may differ in


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    began = time.perf_counter()
    with cluster() as running:
        print(f"ray-measured: two nodes up in {time.perf_counter() - began:.1f} s")
        yield running


@pytest.fixture(scope="module")
def routed(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city's uploads indexed and routed, not yet scored."""
    sources = tmp_path_factory.mktemp("ray_city") / "sources"
    shutil.copytree(small_city.out / "imaging", sources / "imaging", copy_function=shutil.copy2)
    lake = Lake(sources.parent / "lakehouse", sources)
    resources = lake.resources | {"imaging": Imaging(quiet_period_s=0, settle_s=0, workers=2)}
    with lake.active():
        dg.materialize(
            [imaging_index, imaging_routing],
            resources=resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
    return lake


def _copy(lake: Lake, name: str) -> Lake:
    """A copy of the whole lakehouse (tables, encrypted originals, keys) to score apart."""
    home = lake.root.parent.with_name(f"{lake.root.parent.name}_{name}")
    shutil.copytree(lake.root.parent, home)
    return Lake(home / "lakehouse", home / "sources")


def _score(lake: Lake, engine: Engine | None) -> dg.ExecuteInProcessResult:
    resources = lake.resources | {"scoring": Scoring(batch=32, workers=2, engine=engine)}
    with lake.active():
        return dg.materialize(
            [ai_findings], resources=resources, instance=dg.DagsterInstance.ephemeral()
        )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


@pytest.fixture(scope="module")
def scored(routed: Lake, ray_cluster: Cluster) -> dict[str, tuple[Lake, dict[str, object]]]:
    """The same routed studies scored by each engine: each lakehouse and its run's metadata."""
    local = _copy(routed, "local")
    on_ray = _copy(routed, "ray")
    runs = {"local": (local, _metadata(_score(local, None)))}
    engine = Engine(kind="ray", address=ray_cluster.address, actors=2)
    with ray_cluster.driver(), environment(**ray_cluster.env):
        runs["ray"] = (on_ray, _metadata(_score(on_ray, engine)))
    return runs


def test_the_ray_engine_writes_the_local_engines_findings(
    scored: dict[str, tuple[Lake, dict[str, object]]],
) -> None:
    """Same rows, same values: the tables' content sorted, the run's clock column aside."""
    tables = {name: lake.frame(FINDINGS) for name, (lake, _) in scored.items()}
    local, on_ray = (tables[n].drop(CLOCK).sort(pl.all()) for n in ("local", "ray"))
    assert local.height > 20 and local.schema == on_ray.schema
    assert local.equals(on_ray, null_equal=True)
    assert (local["status"] == "scored").sum() > 0.9 * local.height
    # The heatmaps each engine stored (decrypted: each object has a nonce of its own).
    keys = local.filter(pl.col("heatmap_uri").is_not_null())["heatmap_uri"].to_list()
    stored = []
    for lake, _ in scored.values():
        with lake.active():
            stored.append([dicom_store.get(key) for key in keys])
    assert keys and stored[0] == stored[1]
    assert scored["local"][1]["engine"] == "local" and scored["ray"][1]["engine"] == "ray"
    seconds = {name: meta["scoring_seconds"] for name, (_, meta) in scored.items()}
    print(f"ray-measured: {local.height} findings, scoring seconds {seconds}")


def test_the_scoring_ran_on_both_nodes(
    scored: dict[str, tuple[Lake, dict[str, object]]],
) -> None:
    nodes = scored["ray"][1]["engine_nodes"]
    assert isinstance(nodes, list) and len(nodes) == 2
    assert len(set(nodes)) == 2, nodes  # one actor on each node
    assert scored["local"][1]["engine_nodes"] == []


def test_the_ray_processes_listen_on_loopback_only(ray_cluster: Cluster) -> None:
    """Every listening TCP socket of the cluster's processes (both nodes' daemons, the workers
    of actors placed on each node) and of this driver is on 127.0.0.1."""
    import ray

    with ray_cluster.driver(), environment(**ray_cluster.env):
        ray.init(address=ray_cluster.address, log_to_driver=False, configure_logging=False)
        try:

            @ray.remote(num_cpus=1)
            class Probe:
                def node(self) -> str:
                    return str(ray.get_runtime_context().get_node_id())

            probes = [
                Probe.options(scheduling_strategy="SPREAD").remote()  # type: ignore[attr-defined]
                for _ in range(2)
            ]
            nodes = ray.get([p.node.remote() for p in probes], timeout=600)
            sockets = listening([*ray_cluster.pids(), os.getpid()])
        finally:
            ray.shutdown()
    print(f"ray-loopback-measured: {len(ray_cluster.pids())} processes, {sorted(sockets)}")
    assert len(set(nodes)) == 2
    hosts = {address: _ipv4(address[0]) for address in sockets}
    gcs = int(ray_cluster.address.rsplit(":", 1)[1])
    assert any(port == gcs and hosts[(host, port)] == "127.0.0.1" for host, port in sockets)
    elsewhere = {a: p for a, p in sockets.items() if hosts[a] != "127.0.0.1"}
    assert not elsewhere, {
        a: Path(f"/proc/{p}/cmdline").read_bytes()[:200] for a, p in elsewhere.items()
    }


def _ipv4(host: str) -> str:
    """An IPv6 socket bound to an IPv4-mapped address (``::ffff:127.0.0.1``, as Ray's gRPC
    servers bind) listens on that IPv4 address only: named as such."""
    address = ipaddress.ip_address(host)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def test_the_engine_is_local_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GJH_ENGINE", raising=False)
    assert from_environment() is None
    assert Scoring().engine is None
    monkeypatch.setenv("GJH_ENGINE", "ray")
    monkeypatch.setenv("GJH_RAY_ADDRESS", "127.0.0.1:6379")
    chosen = from_environment()
    assert chosen is not None and chosen.kind == "ray"
    monkeypatch.setenv("GJH_ENGINE", "spark")
    with pytest.raises(ValueError, match="GJH_ENGINE"):
        from_environment()
