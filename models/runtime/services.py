"""The programme's AI reading services: the one list, read from ``models/registry.toml``.

Every other place that knows a service takes its list from here: the router's rules
(``pipelines/transform/routing.toml``), the triage policy (``lakehouse/reference/triage.toml``),
the catalogue's ``ai_services`` code check, the apps' names and the training scripts. Each of
those files is checked against this list when it is read, and a service it lacks is an error
naming the file and the service (``require``), never a silent default.

This module reads TOML with the standard library and imports nothing else of the project, so the
lakehouse may import it without depending on the models' runtime (onnxruntime, pydicom) or on
the pipelines: the list sits below every layer that needs it. The models themselves (their
configs, files and cards) are ``models.runtime.registry``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

MODELS_DIR: Final = Path(__file__).resolve().parents[1]
MODELS_ENV: Final = "GJH_MODELS_DIR"
STATUSES: Final = frozenset({"active", "paused", "retired"})
# The services the router must route: a paused service is routed but not scored.
ROUTED_STATUSES: Final = frozenset({"active", "paused"})


class RegistryError(ValueError):
    """The registry or a file that must agree with it is inconsistent; the message says where."""


@dataclass(frozen=True)
class Listed:
    """One service as the registry lists it, whether or not it is scored now.

    Attributes:
        service: The routing key every table, rule and model folder uses.
        name_ko: The service's name shown to Korean readers.
        name_en: The service's name shown to English readers.
        modalities: The DICOM modalities that arrive for it (the apps' modality filter).
        status: ``active`` (scored), ``paused`` (routed, not scored) or ``retired``.
        entry: The whole ``[[service]]`` table, for the model's own keys.
    """

    service: str
    name_ko: str
    name_en: str
    modalities: tuple[str, ...]
    status: str
    entry: dict[str, Any]

    def name(self, lang: str) -> str:
        """The service's name in ``lang`` (``ko``, else English)."""
        return self.name_ko if lang == "ko" else self.name_en


def models_dir() -> Path:
    """The models folder in use: ``$GJH_MODELS_DIR`` (a deployment's or a test's), else this
    repository's ``models/``."""
    return _resolved(os.environ.get(MODELS_ENV, str(MODELS_DIR)), Path.cwd())


@cache
def _resolved(folder: str, cwd: Path) -> Path:
    """``folder`` made absolute from ``cwd``, once: resolving walks the path with a system call
    per part, and the apps ask for every row of a table (500 finding names: 86 ms, timed
    alone)."""
    return (cwd / folder).resolve()


def registry_path() -> Path:
    """The registry file of the models folder in use."""
    return models_dir() / "registry.toml"


def _text(path: Path, entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(
            f"{path}: service {entry.get('service')!r} needs {key} (a non-empty string)"
        )
    return value


def _listed(path: Path, entry: dict[str, Any]) -> Listed:
    service = _text(path, entry, "service")
    modalities = entry.get("modalities")
    if (
        not isinstance(modalities, list)
        or not modalities
        or not all(isinstance(m, str) and m for m in modalities)
    ):
        raise RegistryError(f"{path}: service {service!r} needs modalities (a list of codes)")
    status = _text(path, entry, "status")
    if status not in STATUSES:
        raise RegistryError(f"{path}: service {service!r} has status {status!r}")
    return Listed(
        service=service,
        name_ko=_text(path, entry, "name_ko"),
        name_en=_text(path, entry, "name_en"),
        modalities=tuple(modalities),
        status=status,
        entry=entry,
    )


@cache
def listed_in(root: Path) -> dict[str, Listed]:
    """Every service the registry of the models folder ``root`` lists, by routing key, in the
    registry's order (read once per folder and process)."""
    path = root / "registry.toml"
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("service", [])
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{path}: {error}") from error
    listed: dict[str, Listed] = {}
    for entry in entries:
        found = _listed(path, entry)
        if found.service in listed:
            raise RegistryError(f"{path}: service {found.service!r} is listed twice")
        listed[found.service] = found
    if not listed:
        raise RegistryError(f"{path}: lists no [[service]]")
    return listed


def listed() -> dict[str, Listed]:
    """Every service the registry in use lists (``listed_in`` the models folder in use)."""
    return listed_in(models_dir())


def lookup(code: str, root: Path | None = None) -> Listed:
    """One service the registry lists (of the models folder ``root``, else the one in use).

    Raises:
        RegistryError: Naming the registry file, when it does not list ``code``.
    """
    folder = root or models_dir()
    found = listed_in(folder).get(code)
    if found is None:
        raise RegistryError(f"{folder / 'registry.toml'}: lists no service {code!r}")
    return found


def require(source: Path | str, what: str, have: Iterable[str], statuses: Collection[str]) -> None:
    """Refuse a file that lacks a service the registry lists with one of ``statuses``.

    Args:
        source: The file that must name every such service (named in the error).
        what: What the file gives a service, for the message ("a routing rule").
        have: The services the file names.
        statuses: The statuses that need an entry in the file.

    Raises:
        RegistryError: Naming the file and each service it lacks.
    """
    missing = [s for s, found in listed().items() if found.status in statuses and s not in have]
    if missing:
        raise RegistryError(
            f"{source}: no {what} for the service(s) {', '.join(missing)}, which "
            f"{registry_path()} lists; add one for each"
        )
