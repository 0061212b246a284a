"""Which AI reading service reads each indexed DICOM series, or why the series is held back.

Why a rule file: which series a service can read is clinical and operational knowledge (a new
clinic writes "흉부" where the others write "CHEST", a vendor leaves BodyPartExamined blank, the
city signs up a service), so it lives in ``routing.toml`` beside this module, where an operator
changes it without a code change. That file's header documents the rule language; this module
only loads it strictly (``load_rules``) and applies it (``route``).

``route`` is pure: frames in, one decision per series out, no IO. Each rule becomes one Polars
expression over the whole frame, and the decisions are one ``when`` chain in evaluation order:
study-level holds (no patient identity, patient conflict), then hold rules, then service rules
(first match wins; a matching rule whose needs fail holds the series back naming the need), then
``unrouted``. Each decision carries ``rules_version`` (a hash of the rule file) so it can be traced
to the rules that made it, and ``received_until`` (the study's last upload), so a decision taken
on a study still arriving is recognisably older than the study.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.reference import code_set
from models.runtime.services import ROUTED_STATUSES, RegistryError, require

DEFAULT_RULES: Final = Path(__file__).with_name("routing.toml")
RULES_ENV: Final = "GJH_ROUTING_RULES"

ROUTED: Final = "routed"
HELD_BACK: Final = "held_back"
UNROUTED: Final = "unrouted"
NO_SERVICE: Final = "no_service"
NO_PATIENT_ID: Final = "no_patient_id"
PATIENT_CONFLICT: Final = "patient_conflict"
MISSING_PIXEL_SPACING: Final = "missing_pixel_spacing"
MISSING_SEX_OR_AGE: Final = "missing_sex_or_age"
SEX_NOT_ELIGIBLE: Final = "sex_not_eligible"
AGE_OUT_OF_RANGE: Final = "age_out_of_range"
MISSING_SAMPLING_RATE: Final = "missing_sampling_rate"
SAMPLING_RATE_OUT_OF_RANGE: Final = "sampling_rate_out_of_range"
INCOMPLETE_PROTOCOL: Final = "incomplete_protocol"

UTC_US: Final = pl.Datetime("us", "UTC")
# The output is a silver.imaging_routing row set: its schema is the catalogue's.
OUTPUT_SCHEMA: Final = catalog_table("silver.imaging_routing").polars_schema()
NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_]*$")


class RoutingRulesError(ValueError):
    """The rule file cannot be used; the message names the rule and the problem."""


@dataclass(frozen=True)
class Criteria:
    """What a series must look like (see the header of ``routing.toml``). ``None``: not checked."""

    modality: tuple[str, ...] | None = None
    sop_class: tuple[str, ...] | None = None
    body_part: tuple[str, ...] | None = None
    body_part_keywords: tuple[str, ...] | None = None
    view_position: tuple[str, ...] | None = None
    laterality: tuple[str, ...] | None = None
    image_type_any: tuple[str, ...] | None = None
    image_type_all: tuple[str, ...] | None = None
    presentation_intent: tuple[str, ...] | None = None
    series_keywords: tuple[str, ...] | None = None
    burned_in_annotation: bool | None = None


CRITERIA_KEYS: Final = frozenset(f.name for f in fields(Criteria))


@dataclass(frozen=True)
class Needs:
    """What a service must have to read a series it recognised."""

    pixel_spacing: bool = False
    sex: tuple[str, ...] | None = None
    age_years: tuple[int, int] | None = None
    sampling_hz: tuple[float, float] | None = None


@dataclass(frozen=True)
class Requirement:
    """A series the same study must also hold (matching the rule's criteria and these)."""

    name: str
    criteria: Criteria


@dataclass(frozen=True)
class HoldRule:
    name: str
    reason: str
    message: str
    criteria: Criteria


@dataclass(frozen=True)
class ServiceRule:
    name: str
    service: str
    criteria: Criteria
    needs: Needs = Needs()
    requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class Rules:
    """A checked rule file. ``version``: the first 12 hex characters of its SHA-256."""

    holds: tuple[HoldRule, ...]
    services: tuple[ServiceRule, ...]
    version: str
    source: Path


# --- Loading ------------------------------------------------------------------------------------


def load_rules(path: Path | None = None) -> Rules:
    """Read and check a rule file: ``path``, else ``$GJH_ROUTING_RULES``, else ``routing.toml``."""
    source = path or Path(os.environ.get(RULES_ENV) or DEFAULT_RULES)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise RoutingRulesError(f"cannot read routing rules {source}: {exc}") from exc
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RoutingRulesError(f"{source}: not valid UTF-8 TOML: {exc}") from exc
    try:
        holds, services = _parse(document)
    except RoutingRulesError as exc:
        raise RoutingRulesError(f"{source}: {exc}") from None
    return Rules(holds, services, hashlib.sha256(data).hexdigest()[:12], source)


def _parse(document: Mapping[str, Any]) -> tuple[tuple[HoldRule, ...], tuple[ServiceRule, ...]]:
    _no_unknown_keys("the file", document, {"hold", "service"})
    holds = tuple(_hold(entry, i) for i, entry in enumerate(_tables(document, "hold", "file")))
    services = tuple(
        _service(entry, i) for i, entry in enumerate(_tables(document, "service", "file"))
    )
    if not services:
        raise RoutingRulesError("no [[service]] rules")
    seen: set[str] = {NO_PATIENT_ID, PATIENT_CONFLICT}
    every: tuple[HoldRule | ServiceRule, ...] = (*holds, *services)
    for rule in every:
        if rule.name in seen:
            what = "is built in" if rule.name in (NO_PATIENT_ID, PATIENT_CONFLICT) else "twice"
            raise RoutingRulesError(f"rule {rule.name!r}: the name is used {what}")
        seen.add(rule.name)
    try:
        require(
            "the file", "[[service]] rule", {rule.service for rule in services}, ROUTED_STATUSES
        )
    except RegistryError as exc:
        raise RoutingRulesError(str(exc)) from None
    return holds, services


def _tables(container: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = container.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RoutingRulesError(f"{where}: {key!r} must be an array of tables ([[{key}]])")
    return value


def _no_unknown_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RoutingRulesError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _name(entry: Mapping[str, Any], kind: str, index: int) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RoutingRulesError(
            f"{kind} rule #{index + 1}: 'name' must be a lower_snake_case string, got {name!r}"
        )
    return name


def _text(where: str, entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RoutingRulesError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _hold(entry: Mapping[str, Any], index: int) -> HoldRule:
    name = _name(entry, "hold", index)
    where = f"hold rule {name!r}"
    _no_unknown_keys(where, entry, {"name", "reason", "message"} | CRITERIA_KEYS)
    reason = _text(where, entry, "reason")
    if not NAME_PATTERN.match(reason):
        raise RoutingRulesError(f"{where}: 'reason' must be a lower_snake_case code")
    return HoldRule(name, reason, _text(where, entry, "message"), _criteria(where, entry))


def _service(entry: Mapping[str, Any], index: int) -> ServiceRule:
    name = _name(entry, "service", index)
    where = f"service rule {name!r}"
    _no_unknown_keys(where, entry, {"name", "service", "needs", "requires"} | CRITERIA_KEYS)
    service = _text(where, entry, "service")
    known = code_set("ai_services")
    if service not in known:
        raise RoutingRulesError(
            f"{where}: unknown service {service!r} (known: {', '.join(sorted(known))})"
        )
    requires = []
    for i, req in enumerate(_tables(entry, "requires", where)):
        label = f"{where}, requirement #{i + 1}"
        _no_unknown_keys(label, req, {"name"} | CRITERIA_KEYS)
        requires.append(Requirement(_text(label, req, "name"), _criteria(label, req)))
    needs = entry.get("needs", {})
    if not isinstance(needs, dict):
        raise RoutingRulesError(f"{where}: 'needs' must be a table ([service.needs])")
    return ServiceRule(
        name, service, _criteria(where, entry), _needs(where, needs), tuple(requires)
    )


def _criteria(where: str, entry: Mapping[str, Any]) -> Criteria:
    values: dict[str, Any] = {}
    for key in sorted(CRITERIA_KEYS & set(entry)):
        value = entry[key]
        if key == "burned_in_annotation":
            if not isinstance(value, bool):
                raise RoutingRulesError(f"{where}: {key!r} must be true or false, got {value!r}")
            values[key] = value
        else:
            values[key] = _strings(where, key, value)
    if not values:
        raise RoutingRulesError(f"{where}: no criteria (a rule must match on something)")
    if "body_part_keywords" in values and "body_part" not in values:
        raise RoutingRulesError(f"{where}: 'body_part_keywords' is only used with 'body_part'")
    return Criteria(**values)


def _strings(where: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RoutingRulesError(f"{where}: {key!r} must be a non-empty list of strings")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise RoutingRulesError(f"{where}: {key!r} must hold non-empty strings, got {value!r}")
    return tuple(v.strip() if key == "sop_class" else v.strip().upper() for v in value)


def _pair(where: str, key: str, value: object, kinds: tuple[type, ...]) -> tuple[Any, Any]:
    problem = RoutingRulesError(
        f"{where}: needs.{key} must be [min, max] with 0 <= min <= max, got {value!r}"
    )
    if not isinstance(value, list) or len(value) != 2:
        raise problem
    low, high = value
    if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in value) or not (
        0 <= low <= high
    ):
        raise problem
    return low, high


def _needs(where: str, table: Mapping[str, Any]) -> Needs:
    _no_unknown_keys(f"{where}, needs", table, {f.name for f in fields(Needs)})
    pixel_spacing = table.get("pixel_spacing", False)
    if not isinstance(pixel_spacing, bool):
        raise RoutingRulesError(f"{where}: needs.pixel_spacing must be true or false")
    sex = _strings(f"{where}, needs", "sex", table["sex"]) if "sex" in table else None
    age = _pair(where, "age_years", table["age_years"], (int,)) if "age_years" in table else None
    hz = None
    if "sampling_hz" in table:
        low, high = _pair(where, "sampling_hz", table["sampling_hz"], (int, float))
        hz = (float(low), float(high))
    return Needs(pixel_spacing, sex, age, hz)


# --- Routing ------------------------------------------------------------------------------------


def route(
    series: pl.DataFrame, studies: pl.DataFrame, rules: Rules, decided_at: datetime
) -> pl.DataFrame:
    """One decision per series of ``series``, in its order (see the module docstring and
    ``routing.toml``).

    ``studies`` gives each study's description, patient sex and age, identity and conflict flag;
    a series whose study is missing from it is treated as a study without patient identity.
    """
    if decided_at.tzinfo is None:
        raise ValueError("decided_at must be timezone-aware")
    frame = _prepare(series.rechunk(), studies.rechunk())
    columns = {f"_hold{i}": _match(hold.criteria) for i, hold in enumerate(rules.holds)}
    columns |= {f"_svc{i}": _match(rule.criteria) for i, rule in enumerate(rules.services)}
    frame = frame.with_columns(**columns)
    requirements = {
        f"_svc{i}_req{k}": (pl.col(f"_svc{i}") & _match(req.criteria))
        .any()
        .over("study_instance_uid")
        for i, rule in enumerate(rules.services)
        for k, req in enumerate(rule.requires)
    }
    if requirements:
        frame = frame.with_columns(**requirements)

    branches = _study_branches()
    branches += [
        _Branch(pl.col(f"_hold{i}"), HELD_BACK, None, hold.name, hold.reason, hold.message)
        for i, hold in enumerate(rules.holds)
    ]
    for i, rule in enumerate(rules.services):
        branches += _service_branches(rule, f"_svc{i}")
    branches.append(
        _Branch(
            pl.lit(True),
            UNROUTED,
            None,
            None,
            NO_SERVICE,
            "no service rule matches this series",
            pl.format(
                " (modality {}, body part {}, view {}, series '{}')",
                _shown("_modality"),
                _shown("_body_part"),
                _shown("_view_position"),
                pl.col("series_description").fill_null(""),
            ),
        )
    )
    # The first branch whose condition holds decides: its index, then its values by lookup.
    chosen = _first(((b.condition, pl.lit(i, pl.Int32)) for i, b in enumerate(branches)), None)
    detail = _first(
        (
            (pl.col("_branch") == i, b.detail)
            for i, b in enumerate(branches)
            if b.detail is not None
        ),
        "",
    )
    table = pl.DataFrame(
        {
            "_branch": range(len(branches)),
            "outcome": [b.outcome for b in branches],
            "service": [b.service for b in branches],
            "rule": [b.rule for b in branches],
            "reason": [b.reason for b in branches],
            "_message": [b.message for b in branches],
        },
        schema={
            "_branch": pl.Int32,
            "outcome": pl.String,
            "service": pl.String,
            "rule": pl.String,
            "reason": pl.String,
            "_message": pl.String,
        },
    )
    return (
        frame.with_columns(_branch=chosen)
        .join(table, on="_branch", how="left", maintain_order="left")
        .select(
            "study_instance_uid",
            "series_instance_uid",
            "outcome",
            "service",
            "rule",
            "reason",
            pl.concat_str("_message", detail.fill_null("")).alias("message"),
            pl.col("instances").cast(pl.Int64),
            pl.lit(rules.version, pl.String).alias("rules_version"),
            pl.col("_received_until").cast(UTC_US).alias("received_until"),
            pl.lit(decided_at.astimezone(UTC)).cast(UTC_US).alias("decided_at"),
        )
        .cast(OUTPUT_SCHEMA)
    )


def _prepare(series: pl.DataFrame, studies: pl.DataFrame) -> pl.DataFrame:
    """The series with their study's columns and normalised text to match on."""
    study_columns = studies.select(
        "study_instance_uid",
        "study_description",
        "patient_sex",
        "patient_age_months",
        "patient_key",
        "patient_conflict",
        pl.col("last_received_at").alias("_study_received"),
    )
    joined = series.join(study_columns, on="study_instance_uid", how="left", maintain_order="left")
    return joined.with_columns(
        _modality=_upper("modality"),
        _sop_class=_blank_to_null(pl.col("sop_class_uid").str.strip_chars()),
        _body_part=_upper("body_part"),
        _view_position=_upper("view_position"),
        _laterality=_upper("laterality"),
        _presentation_intent=_upper("presentation_intent"),
        # "\ORIGINAL\PRIMARY\M\ND\": a value matches as "\M\", never as a substring of another.
        _image_type=pl.concat_str(
            pl.lit("\\"),
            _upper("image_type").str.replace_all(r"\s*\\\s*", "\\", literal=False),
            pl.lit("\\"),
        ),
        _series_text=_upper("series_description").fill_null(""),
        _descriptions=pl.concat_str(
            _upper("series_description").fill_null(""),
            _upper("study_description").fill_null(""),
            separator="\n",
        ),
        _received_until=pl.coalesce(
            pl.col("_study_received"),
            pl.col("last_received_at").max().over("study_instance_uid"),
        ),
    )


def _first(cases: Iterable[tuple[pl.Expr, pl.Expr]], otherwise: str | None) -> pl.Expr:
    """``when(c1).then(v1).when(c2).then(v2)...otherwise(...)``: the first case that holds."""
    chain: Any = pl
    for condition, value in cases:
        chain = chain.when(condition).then(value)
    return pl.lit(otherwise) if chain is pl else chain.otherwise(pl.lit(otherwise))


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(None).otherwise(expr)


def _upper(column: str) -> pl.Expr:
    return _blank_to_null(pl.col(column).str.strip_chars().str.to_uppercase())


def _contains_any(column: str, words: Sequence[str]) -> pl.Expr:
    return pl.col(column).str.contains_any(list(words))


def _match(c: Criteria) -> pl.Expr:
    """True where a series meets every criterion of ``c`` (a blank attribute never matches)."""
    parts: list[pl.Expr] = []
    listed = (
        ("_modality", c.modality),
        ("_sop_class", c.sop_class),
        ("_view_position", c.view_position),
        ("_laterality", c.laterality),
        ("_presentation_intent", c.presentation_intent),
    )
    parts += [pl.col(column).is_in(values) for column, values in listed if values is not None]
    if c.body_part is not None:
        fallback = (
            _contains_any("_descriptions", c.body_part_keywords)
            if c.body_part_keywords
            else pl.lit(False)
        )
        parts.append(
            pl.when(pl.col("_body_part").is_not_null())
            .then(pl.col("_body_part").is_in(c.body_part))
            .otherwise(fallback)
        )
    if c.image_type_any is not None:
        parts.append(_contains_any("_image_type", [f"\\{v}\\" for v in c.image_type_any]))
    if c.image_type_all is not None:
        parts += [
            pl.col("_image_type").str.contains(f"\\{v}\\", literal=True) for v in c.image_type_all
        ]
    if c.series_keywords is not None:
        parts.append(_contains_any("_series_text", c.series_keywords))
    if c.burned_in_annotation is not None:
        parts.append(pl.col("burned_in_annotation") == c.burned_in_annotation)
    return pl.all_horizontal(parts).fill_null(False)


@dataclass(frozen=True)
class _Branch:
    """One possible decision, taken where ``condition`` holds and no earlier branch's does.

    ``detail``, when set, is appended to ``message`` with the series' own values (its sex, its
    sampling frequency...).
    """

    condition: pl.Expr
    outcome: str
    service: str | None
    rule: str | None
    reason: str | None
    message: str
    detail: pl.Expr | None = None


def _shown(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).fill_null("blank")


def _study_branches() -> list[_Branch]:
    return [
        _Branch(
            pl.col("patient_key").is_null(),
            HELD_BACK,
            None,
            NO_PATIENT_ID,
            NO_PATIENT_ID,
            "the study has no patient identity (no patient key): no result could reach a patient",
        ),
        _Branch(
            pl.col("patient_conflict").fill_null(False),
            HELD_BACK,
            None,
            PATIENT_CONFLICT,
            PATIENT_CONFLICT,
            "the study's uploads name more than one patient: held until the conflict is resolved",
        ),
    ]


def _service_branches(rule: ServiceRule, column: str) -> list[_Branch]:
    """The rule's need checks in order, then the routing itself, each guarded by its match."""
    matched = pl.col(column)
    head = f"rule {rule.name} ({rule.service}) needs"
    needs = rule.needs
    out: list[_Branch] = []

    def held(failed: pl.Expr, reason: str, message: str, detail: pl.Expr | None = None) -> None:
        out.append(_Branch(matched & failed, HELD_BACK, None, rule.name, reason, message, detail))

    if needs.pixel_spacing:
        spacing = pl.col("pixel_spacing_mm")
        held(
            spacing.is_null() | (spacing <= 0),
            MISSING_PIXEL_SPACING,
            f"{head} the pixel spacing in mm; the series has none",
        )
    sex, months = pl.col("patient_sex"), pl.col("patient_age_months")
    if needs.sex is not None or needs.age_years is not None:
        missing = pl.lit(False)
        if needs.sex is not None:
            missing = missing | sex.is_null() | (sex.str.strip_chars() == "")
        if needs.age_years is not None:
            missing = missing | months.is_null()
        held(
            missing,
            MISSING_SEX_OR_AGE,
            f"{head} the patient's sex and age",
            pl.format(
                "; the study gives sex {}, age {} months",
                _shown("patient_sex"),
                _shown("patient_age_months"),
            ),
        )
    if needs.sex is not None:
        held(
            ~sex.str.to_uppercase().is_in(needs.sex),
            SEX_NOT_ELIGIBLE,
            f"{head} a patient of sex {'/'.join(needs.sex)}",
            pl.format("; the patient's is {}", sex),
        )
    if needs.age_years is not None:
        low, high = needs.age_years
        years = months // 12
        held(
            (years < low) | (years > high),
            AGE_OUT_OF_RANGE,
            f"{head} an age of {low}-{high} years",
            pl.format("; the patient is {} years old", years),
        )
    if needs.sampling_hz is not None:
        low_hz, high_hz = needs.sampling_hz
        hz = pl.col("sampling_frequency_hz")
        held(
            hz.is_null(), MISSING_SAMPLING_RATE, f"{head} a sampling frequency; the series has none"
        )
        held(
            (hz < low_hz) | (hz > high_hz),
            SAMPLING_RATE_OUT_OF_RANGE,
            f"{head} a sampling frequency of {low_hz:g}-{high_hz:g} Hz",
            pl.format("; the waveform is sampled at {} Hz", hz),
        )
    if rule.requires:
        present = [pl.col(f"{column}_req{k}") for k in range(len(rule.requires))]
        lacking = [
            pl.when(~p).then(pl.lit(req.name))
            for p, req in zip(present, rule.requires, strict=True)
        ]
        held(
            ~pl.all_horizontal(present),
            INCOMPLETE_PROTOCOL,
            f"{head} the study to also hold ",
            pl.format(
                "{}; it does not (yet)",
                pl.concat_str(lacking, separator=" and ", ignore_nulls=True),
            ),
        )
    out.append(
        _Branch(
            matched,
            ROUTED,
            rule.service,
            rule.name,
            None,
            f"routed to {rule.service} by rule {rule.name}",
        )
    )
    return out
