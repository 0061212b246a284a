"""Checks a FHIR document Bundle against HL7's IPS StructureDefinitions, beyond parsing.

No offline IPS validator exists on PyPI, so this reads the profiles' differentials
(``tests/fhir/ips/``, from ``hl7.fhir.uv.ips`` 2.0.0; see SOURCE.md) and checks what they add
to FHIR:

* the Bundle's entry slices (a Composition first, one Patient), fixed values and cardinalities,
  every ``fullUrl`` present and unique, and every reference resolving inside the Bundle;
* the Composition's section slices, told apart by their ``code`` pattern (problems 11450-4,
  allergies 48765-2, medications 10160-0...): how many of each, their required elements, and the
  resource types their entries may reference;
* each profiled resource's element cardinalities and fixed or pattern values;
* every FHIRPath invariant (``constraint`` of severity error) with ``fhirpathpy``, evaluated in
  its element's context (each instance of the element or slice), not at the resource root.

``problems(bundle)`` returns what is wrong, in words (empty when the Bundle conforms).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import fhirpathpy
from fhir.resources.R4B.bundle import Bundle
from fhirpathpy.models import models

DEFINITIONS = Path(__file__).with_name("ips")
R4 = models["r4"]
CORE = "http://hl7.org/fhir/StructureDefinition/"
VALUE_KEYS = ("fixed", "pattern")

Json = Any


@cache
def definitions() -> dict[str, dict[str, Json]]:
    """The shipped StructureDefinitions by canonical URL."""
    found = {}
    for path in sorted(DEFINITIONS.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        found[sd["url"]] = sd
    return found


def by_type() -> dict[str, dict[str, Json]]:
    """The shipped IPS profile of each resource type."""
    return {sd["type"]: sd for sd in definitions().values()}


def profile_type(url: str) -> str:
    """The resource type a profile constrains (a shipped one, or a core profile's name)."""
    url = url.split("|", maxsplit=1)[0]
    if url in definitions():
        return str(definitions()[url]["type"])
    return {"vitalsigns": "Observation"}.get(url.removeprefix(CORE), url.removeprefix(CORE))


def _children(node: Json, name: str) -> list[Json]:
    """A JSON node's values for one element name (a choice ``value[x]`` matches ``valueX``)."""
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        stem = name[:-3]
        values = [v for k, v in node.items() if k.startswith(stem) and k[len(stem) :][:1].isupper()]
    else:
        values = [node[name]] if name in node else []
    out: list[Json] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


def matches(pattern: Json, value: Json) -> bool:
    """FHIR pattern matching: every part of ``pattern`` is in ``value`` (list items each match
    some item)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(v, value[k]) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches(p, v) for v in items) for p in pattern)
    return bool(pattern == value)


def _fixed(element: dict[str, Json]) -> tuple[str, Json] | None:
    for key, value in element.items():
        if key.startswith(VALUE_KEYS):
            return key, value
    return None


def _holds(node: Json, expression: str, resource: Json) -> bool:
    result = fhirpathpy.evaluate(node, expression, {"resource": resource}, model=R4)
    return result == [True]


def _relative(element_id: str, base: str) -> list[str]:
    """An element id's names below ``base`` (``Composition.section:x.entry`` below
    ``Composition.section:x`` is ``["entry"]``)."""
    rest = element_id[len(base) :].lstrip(".")
    return rest.split(".") if rest else []


class Checker:
    """One Bundle's check; ``found`` collects the problems."""

    def __init__(self, bundle: Json) -> None:
        self.bundle = bundle
        self.found: list[str] = []
        self.by_url = {e.get("fullUrl"): e.get("resource") for e in bundle.get("entry", [])}

    def resolve(self, ref: str | None) -> Json:
        """The entry's resource a reference names: its fullUrl, or a relative ``Type/id``
        against the entries' RESTful fullUrls (FHIR's rule for resolving in a Bundle)."""
        if ref in self.by_url:
            return self.by_url[ref]
        ends = [r for url, r in self.by_url.items() if ref and str(url).endswith("/" + ref)]
        return ends[0] if len(ends) == 1 else None

    def fail(self, where: str, what: str) -> None:
        self.found.append(f"{where}: {what}")

    # --- elements of one profile -------------------------------------------------------------

    def elements(
        self, sd: dict[str, Json], base: str, node: Json, resource: Json, where: str
    ) -> None:
        """Check the differential's elements under ``base`` (an element or slice id) against
        one instance ``node``: cardinalities, fixed and pattern values, invariants, and the
        value-discriminated slices below it."""
        own = [e for e in sd["differential"]["element"] if e["id"] == base]
        for element in own:
            for c in element.get("constraint", []):
                if c["severity"] == "error" and not _holds(node, c["expression"], resource):
                    self.fail(where, f"invariant {c['key']} fails: {c['human']}")
        below = [
            e
            for e in sd["differential"]["element"]
            if e["id"].startswith(base + ".") and ":" not in e["id"][len(base) + 1 :]
        ]
        for element in below:
            names = _relative(element["id"], base)
            parents = [node]
            for name in names[:-1]:
                parents = [c for p in parents for c in _children(p, name)]
            for parent in parents:
                values = _children(parent, names[-1])
                self.cardinality(element, values, f"{where}.{'.'.join(names)}")
                fixed = _fixed(element)
                for value in values:
                    if fixed and not matches(fixed[1], value):
                        self.fail(f"{where}.{'.'.join(names)}", f"{fixed[0]} {fixed[1]!r} not met")
                    for c in element.get("constraint", []):
                        if c["severity"] == "error" and not _holds(
                            value, c["expression"], resource
                        ):
                            self.fail(where, f"invariant {c['key']} fails: {c['human']}")
        for element in [*own, *below]:
            if "slicing" in element:
                self.slices(sd, element, node, resource, where)

    def cardinality(self, element: dict[str, Json], values: list[Json], where: str) -> None:
        low, high = element.get("min"), element.get("max")
        if low is not None and len(values) < low:
            self.fail(where, f"needs at least {low}, has {len(values)}")
        if high not in (None, "*") and len(values) > int(high):
            self.fail(where, f"allows at most {high}, has {len(values)}")

    def slices(
        self, sd: dict[str, Json], sliced: dict[str, Json], node: Json, resource: Json, where: str
    ) -> None:
        """Value- or pattern-discriminated slices (``Composition.section`` by ``code``): each
        instance goes to the slice whose discriminator it matches; each slice's count, then its
        own elements per instance."""
        kinds = {d["type"] for d in sliced["slicing"]["discriminator"]}
        if not kinds <= {"value", "pattern"}:
            return  # type and profile slices are checked where they apply (entries, references)
        path = [d["path"] for d in sliced["slicing"]["discriminator"]]
        base_id = sliced["id"]
        names = _relative(base_id, sd["type"])
        parents = [node] if base_id.count(".") == 0 else [resource]
        for name in names:
            parents = [c for p in parents for c in _children(p, name)]
        instances = parents
        slice_ids = [
            e["id"]
            for e in sd["differential"]["element"]
            if e["id"].startswith(base_id + ":") and "." not in e["id"][len(base_id) + 1 :]
        ]
        for slice_id in slice_ids:
            element = next(e for e in sd["differential"]["element"] if e["id"] == slice_id)
            wanted = []
            for p in path:
                target = slice_id if p == "$this" else f"{slice_id}.{p}"
                value = next(
                    (_fixed(e) for e in sd["differential"]["element"] if e["id"] == target), None
                )
                if value is None:
                    break
                wanted.append((p, value[1]))
            if len(wanted) != len(path):
                continue  # a slice told apart by something else (an extension's url profile)
            members = [
                i
                for i in instances
                if all(
                    any(matches(v, x) for x in ([i] if p == "$this" else _children(i, p)))
                    for p, v in wanted
                )
            ]
            label = f"{where} slice {element.get('sliceName')}"
            self.cardinality(element, members, label)
            for i, member in enumerate(members):
                self.elements(sd, slice_id, member, resource, f"{label}[{i}]")
                self.entry_types(sd, slice_id, member, f"{label}[{i}]")

    def entry_types(self, sd: dict[str, Json], slice_id: str, section: Json, where: str) -> None:
        """A section's entries resolve in the Bundle, to a resource type the slice allows."""
        entry = next(
            (e for e in sd["differential"]["element"] if e["id"] == f"{slice_id}.entry"), None
        )
        if entry is None or "type" not in entry:
            return
        allowed = {profile_type(p) for t in entry["type"] for p in t.get("targetProfile", [])}
        for ref in _children(section, "entry"):
            target = self.resolve(ref.get("reference"))
            if target is None:
                self.fail(where, f"entry {ref.get('reference')} is not in the Bundle")
            elif target.get("resourceType") not in allowed:
                self.fail(where, f"entry is a {target.get('resourceType')}, not {sorted(allowed)}")

    # --- the Bundle ----------------------------------------------------------------------------

    def run(self) -> list[str]:
        try:
            Bundle.model_validate(self.bundle)
        except ValueError as error:
            self.fail("Bundle", f"does not parse as FHIR R4B: {error}")
            return self.found
        sd = by_type()["Bundle"]
        self.elements(sd, "Bundle", self.bundle, self.bundle, "Bundle")
        self.bundle_entries(sd)
        self.references()
        for i, entry in enumerate(self.bundle.get("entry", [])):
            resource = entry.get("resource", {})
            profile = by_type().get(resource.get("resourceType"))
            if profile is not None and profile["type"] != "Bundle":
                kind = profile["type"]
                self.elements(profile, kind, resource, resource, f"entry[{i}] {kind}")
        return self.found

    def bundle_entries(self, sd: dict[str, Json]) -> None:
        """The entry slices, told apart by resource type: one Composition (the first entry, as
        every FHIR document), one Patient, each slice's count; fullUrls unique."""
        entries = self.bundle.get("entry", [])
        urls = [e.get("fullUrl") for e in entries]
        if len(set(urls)) != len(urls):
            self.fail("Bundle.entry", "fullUrl values repeat")
        if entries and entries[0].get("resource", {}).get("resourceType") != "Composition":
            self.fail("Bundle.entry[0]", "a document starts with its Composition")
        for element in sd["differential"]["element"]:
            name = element.get("sliceName")
            if not element["id"].startswith("Bundle.entry:") or "." in element["id"]:
                continue
            resource_el = next(
                e for e in sd["differential"]["element"] if e["id"] == f"{element['id']}.resource"
            )
            kind = resource_el["type"][0]["code"]
            members = [e for e in entries if e.get("resource", {}).get("resourceType") == kind]
            if kind != "Observation":  # several Observation slices: told apart by profile
                self.cardinality(element, members, f"Bundle entry slice {name}")

    def references(self) -> None:
        """Every reference in a document resolves to an entry of the Bundle."""
        for i, entry in enumerate(self.bundle.get("entry", [])):
            for ref in _references(entry.get("resource", {})):
                if self.resolve(ref) is None:
                    self.fail(f"entry[{i}]", f"reference {ref} is not in the Bundle")


def _references(node: Json) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def problems(bundle: Json) -> list[str]:
    """What in ``bundle`` (FHIR JSON, parsed) breaks the IPS profiles; empty when nothing."""
    return Checker(bundle).run()
