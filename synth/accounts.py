"""The demo's sign-ins: ``<out>/demo_accounts.json``, tied to people and institutions of this city.

The platform's apps sign people in (``lakehouse/accounts.py``: ``load_demo`` reads this file).
A demo only convinces if each account opens onto something to show, so the accounts are chosen
from what the generator produced, not invented:

* citizens: alive and resident at the end of the window, signed up for the citizen app (and not
  deleted) and, preferably, with claims statements delivered, so every citizen page has records:

  - ``citizen.senior``: 75 or older and a member of the seniors' centre who was measured there
    (falling back, in this order, to a measured member of any age, then to the oldest app user
    of 65 or more: small cities have few app users among the old);
  - ``citizen.imaging``: someone whose imaging study the AI services will score (routed to a
    service, not burned in, no damaged file), preferably at an enrolled clinic and with an
    abnormal finding, so the clinician and the AI views have a case;
  - ``citizen.carer``: an adult who could be the senior's proxy (same dong, then district, an
    age gap of a generation). The city models no households: the file says it is a candidate;
  - ``citizen.unlinked``: signed up but without a record link (no record-link consent, or the
    link failed), with claims delivered, so the app shows what the programme holds and not the
    national history it has;
  - ``citizen.withdrawn``: gave the record-link consent and withdrew it, with claims delivered.

  Each citizen's consent state comes from the app's delivered event log, folded the way the
  access layer folds ``silver.programme_events`` (``lakehouse.access.folds.consent``); the senior
  and the imaging patient are preferably linked, and every ``who`` names the state.

* clinicians, each with the YKIHO code the institution registry delivers: ``clinic.doctor`` at
  the enrolled clinic where ``citizen.imaging`` was imaged (so the doctor sees that patient),
  ``phc.doctor`` at the senior's district health centre, ``hospital.radiologist`` at the enrolled
  tertiary hospital, which reads remotely;
* ``city.official`` (health policy division) and ``platform.admin``.

Staff are not residents: their names are drawn like the residents' names. Passwords are two
short words and four digits from the account's own stream (``synth.rng``), so the same arguments
give the same file, byte for byte. Nothing downstream reads this module; the file is the interface.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from lakehouse.access.folds import CONSENT_EVENTS, consent
from synth import reference as ref
from synth.calendar import centre_open
from synth.centre.members import DEVICES, epoch_day, select_members
from synth.centre.visits import Roster, day_visits
from synth.config import CityConfig
from synth.faults import FaultLog
from synth.imaging.orders import ImagingOrder
from synth.institutions import Enrolment
from synth.population import _names, age_years
from synth.programme import plan_users
from synth.rng import stream

FILE: Final = "demo_accounts.json"
NOTE: Final = "Demo accounts of a synthetic city. Not real people."
ROLE_ORDER: Final = ("citizen", "clinician", "official", "admin")
SENIOR_AGE: Final = 75
CENTRE_AGE: Final = 65  # the centre's membership age (synth.centre.members.MEMBER_AGE)
ADULT_AGE: Final = 19  # age of majority in Korea (Civil Act art. 4)
CARER_AGES: Final = (30, 64)  # an adult child's ages, preferred for the carer candidate
GENERATION: Final = (20, 45)  # preferred age gap between the senior and the carer candidate
CLINIC: Final = "31"
HOSPITALS: Final = ("11", "21")
TERTIARY: Final = "01"
HEALTH_CENTRE: Final = "71"
# Routes that are not an AI service: the router holds these studies back (synth.imaging.assemble).
NOT_SCORED: Final = frozenset({"qa_phantom", "burned_in_annotation", "no_service"})
# Password words: short, common, unambiguous when read aloud or typed on a phone.
WORDS: Final = (
    "amber", "apple", "birch", "bloom", "brook", "cedar", "cloud", "coral", "daisy", "delta",
    "ember", "fern", "field", "frost", "grape", "hazel", "honey", "iris", "jade", "lake",
    "lemon", "lily", "lotus", "maple", "mint", "moon", "olive", "pearl", "pine", "plum",
    "rain", "river", "sage", "shell", "snow", "star", "stone", "tide", "tulip", "wave",
)  # fmt: skip
STAFF: Final = (
    "clinic.doctor", "phc.doctor", "hospital.radiologist", "city.official", "platform.admin",
)  # fmt: skip
# The consent states a demo citizen can be in (lakehouse.access.folds.Consent.state), in words.
CONSENT_WORDS: Final = {
    "signed_up": ("건강보험 기록 연계 전", "no record link yet"),
    "consented": ("기록 연계 동의, 연계 미완료", "record-link consent given, link not completed"),
    "linked": ("건강보험 기록 연계 완료", "records linked"),
    "withdrawn": ("기록 연계 동의 철회", "record-link consent withdrawn"),
}
UNLINKED: Final = ("signed_up", "consented")
SEX_KO: Final = {"M": "남성", "F": "여성"}
SEX_EN: Final = {"M": "man", "F": "woman"}


@dataclass(frozen=True)
class _City:
    """What the selection needs, gathered once: residents as candidates, the institution
    registry, enrolments and the scored imaging studies."""

    cfg: CityConfig
    candidates: pl.DataFrame  # resident, alive, active app user at the end; see _candidates
    institutions: pl.DataFrame
    enrolled: dict[str, Enrolment]
    studies: pl.DataFrame  # scored studies: rrn, accession, exam, ykiho, abnormal, cl_cd
    districts: dict[str, tuple[str, str]]  # code -> (Korean, English)
    dongs: dict[str, tuple[str, str]]


def write_demo_accounts(
    cfg: CityConfig,
    out: Path,
    people: pl.DataFrame,
    institutions: pl.DataFrame,
    enrolments: list[Enrolment],
    orders: list[ImagingOrder],
    faults: FaultLog,
) -> dict[str, int]:
    """Choose the demo accounts and write ``<out>/demo_accounts.json``.

    Runs after the claims, imaging, centre and programme stages: it reads the delivered claims
    statements and the imaging ground truth, so each account points at data that was delivered
    whole (files and rows ``faults`` records as broken do not count).

    Args:
        cfg: The city; its seed fixes the passwords and the staff.
        out: The output root, with the other stages' deliveries already in it.
        people: The population.
        institutions: The institutions, as the registry delivers them.
        enrolments: The AI-platform enrolment rounds.
        orders: Every imaging order, with the patient's registration number.
        faults: The faults injected so far.

    Returns:
        Accounts written per role (a role without a fitting person in a tiny city has none).
    """
    city = _gather(cfg, out, people, institutions, enrolments, orders, faults)
    accounts: list[dict[str, Any]] = []
    senior = _senior(city, people)
    imaging = _imaging_patient(city, exclude={senior["rrn"]} if senior else set())
    taken = {p["rrn"] for p in (senior, imaging) if p}
    carer = _carer(city, senior, exclude=taken)
    taken |= {carer["rrn"]} if carer else set()
    unlinked = _in_state(city, UNLINKED, exclude=taken)
    taken |= {unlinked["rrn"]} if unlinked else set()
    withdrawn = _in_state(city, ("withdrawn",), exclude=taken)
    for username, person, who in (
        ("citizen.senior", senior, _who_senior),
        ("citizen.imaging", imaging, _who_imaging),
        ("citizen.carer", carer, _who_carer),
        ("citizen.unlinked", unlinked, _who_state),
        ("citizen.withdrawn", withdrawn, _who_state),
    ):
        if person is not None:
            accounts.append(_citizen(username, person, who(city, person, senior)))
    accounts += _clinicians(city, imaging, senior)
    accounts += _staff_accounts(cfg)
    _passwords(cfg, accounts)
    accounts.sort(key=lambda a: (ROLE_ORDER.index(a["role"]), a["username"]))
    doc = {"synthetic": True, "note": NOTE, "accounts": accounts}
    (out / FILE).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    counts = Counter(a["role"] for a in accounts)
    return {"demo_accounts": len(accounts), **{role: counts[role] for role in ROLE_ORDER}}


# -- what the city holds ------------------------------------------------------------------------


def _gather(
    cfg: CityConfig,
    out: Path,
    people: pl.DataFrame,
    institutions: pl.DataFrame,
    enrolments: list[Enrolment],
    orders: list[ImagingOrder],
    faults: FaultLog,
) -> _City:
    districts = ref.param("districts")
    dongs = ref.dongs()
    candidates = _candidates(cfg, people)
    broken_files = {f.path for f in faults.faults if f.line is None}
    broken_rows = {(f.path, f.line) for f in faults.faults if f.line is not None}
    statements = _statements(out, set(candidates["rrn"].to_list()), broken_files, broken_rows)
    candidates = (
        candidates.join(statements, on="rrn", how="left")
        .join(_consent_states(out), on="rrn", how="left")
        .with_columns(pl.col("statements").fill_null(0), pl.col("consent").fill_null("none"))
    )
    return _City(
        cfg=cfg,
        candidates=candidates,
        institutions=institutions,
        enrolled={e.ykiho: e for e in enrolments},
        studies=_scored_studies(out, orders, institutions, broken_files),
        districts={
            r["district_code"]: (r["name_ko"], r["name_en"])
            for r in districts.iter_rows(named=True)
        },
        dongs={
            r["dong_code"]: (r["dong_name"], r["dong_name_en"]) for r in dongs.iter_rows(named=True)
        },
    )


def _candidates(cfg: CityConfig, people: pl.DataFrame) -> pl.DataFrame:
    """People alive and resident on the window's last day whose app account is still open
    then, with their age that day."""
    users = plan_users(people, cfg)
    end = epoch_day(cfg.end)
    open_at_end = (users.signup_day < end) & (users.delete_day >= end)
    app = pl.DataFrame(
        {"rrn": users.rrn, "signup_day": users.signup_day, "open": open_at_end}
    ).filter("open")
    last = np.datetime64(cfg.end - timedelta(days=1), "D")
    birth = people["birth_date"].to_numpy().astype("datetime64[D]")
    return (
        people.with_columns(pl.Series("age", age_years(birth, last)))
        .filter(pl.col("departure").is_null() & (pl.col("present_to") == cfg.end))
        .join(app.select("rrn", "signup_day"), on="rrn", how="inner")
        .sort("pid")
    )


def _statements(
    out: Path, wanted: set[str], broken_files: set[str], broken_rows: set[tuple[str, int]]
) -> pl.DataFrame:
    """Claims statements (T200) delivered whole, per registration number among ``wanted``."""
    frames = []
    for manifest in sorted((out / "claims").glob("*/delivery.json")):
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        for entry in doc["files"]:
            rel = f"claims/{manifest.parent.name}/{entry['name']}"
            if not entry["name"].startswith("T200") or rel in broken_files:
                continue
            # JID is ASCII, so a lossy read is exact for it whatever the file's encoding.
            frame = pl.read_csv(
                manifest.parent / entry["name"],
                columns=["JID"],
                separator=entry["delimiter"],
                encoding="utf8-lossy",
                infer_schema=False,
            ).with_row_index("line", offset=2)
            bad = [line for path, line in broken_rows if path == rel]
            frames.append(
                frame.filter(pl.col("JID").is_in(sorted(wanted)) & ~pl.col("line").is_in(bad))
            )
    if not frames:
        return pl.DataFrame(schema={"rrn": pl.Utf8, "statements": pl.UInt32})
    return pl.concat(frames).group_by(pl.col("JID").alias("rrn")).agg(pl.len().alias("statements"))


def _consent_states(out: Path) -> pl.DataFrame:
    """Each app user's consent state (``rrn``, ``consent``) at the end of the window, folded
    from the delivered event log (the first delivery of each day: a re-send repeats it)."""
    rows: list[dict[str, Any]] = []
    for manifest in sorted((out / "programme" / "app_events").glob("*-1/delivery.json")):
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        for entry in doc["files"]:
            for line in (manifest.parent / entry["name"]).read_text("utf-8").splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:  # a malformed line: only logins and shares
                    continue
                if event.get("event_type") in CONSENT_EVENTS:
                    rows.append(event)
    rrn = {e["app_user_id"]: e["rrn"] for e in rows if e["event_type"] == "signup"}
    schema = {"rrn": pl.Utf8, "consent": pl.Utf8}
    if not rows:
        return pl.DataFrame(schema=schema)
    events = pl.DataFrame(
        [
            {
                "event_id": e["event_id"],
                "event_type": e["event_type"],
                "occurred_at": e["occurred_at"],
                "app_user_id": e["app_user_id"],
                "details": json.dumps({k: v for k, v in e.items() if k not in ("rrn", "name")}),
            }
            for e in rows
        ]
    )
    states = [
        {"rrn": rrn[user], "consent": consent(mine).state}
        for (user,), mine in events.group_by("app_user_id")
        if user in rrn
    ]
    return pl.DataFrame(states, schema=schema)


def _scored_studies(
    out: Path, orders: list[ImagingOrder], institutions: pl.DataFrame, broken_files: set[str]
) -> pl.DataFrame:
    """Studies the AI services will score: routed to a service and delivered undamaged."""
    truth_file = out / "ground_truth" / "imaging_studies.jsonl"
    scored: dict[str, bool] = {}
    if truth_file.exists():
        for line in truth_file.read_text(encoding="utf-8").splitlines():
            t = json.loads(line)
            if t["expected_route"] not in NOT_SCORED and not broken_files & set(t["files"]):
                scored[t["accession"]] = bool(t["abnormal"])
    rows = [
        {
            "rrn": o.patient_id,
            "accession": o.accession,
            "exam": o.exam,
            "ykiho": o.institution_code,
            "abnormal": scored[o.accession],
        }
        for o in orders
        if o.accession in scored
    ]
    schema = {"rrn": pl.Utf8, "accession": pl.Utf8, "exam": pl.Utf8, "ykiho": pl.Utf8}
    frame = pl.DataFrame(rows, schema={**schema, "abnormal": pl.Boolean})
    return frame.join(institutions.select("ykiho", "cl_cd"), on="ykiho", how="left").sort(
        "accession"
    )


def _centre_visits(cfg: CityConfig, people: pl.DataFrame) -> pl.DataFrame:
    """Members and their measured visits in the window (every visit uses at least one device),
    redrawn from the centre's own streams exactly as ``synth.centre`` draws them."""
    members = select_members(people, cfg)
    roster = Roster.from_members(members)
    visits = np.zeros(members.height, dtype=np.int64)
    sessions = np.zeros(members.height, dtype=np.int64)
    day = cfg.start
    while day < cfg.end:
        if centre_open(day):
            v = day_visits(roster, day, cfg.seed)
            np.add.at(visits, v.visitors, 1)
            for device in DEVICES:
                np.add.at(sessions, v.sessions[device].member, 1)
        day += timedelta(days=1)
    return members.select("rrn", "member_no").with_columns(
        pl.Series("visits", visits), pl.Series("sessions", sessions)
    )


# -- choosing the citizens ----------------------------------------------------------------------


def _best(frame: pl.DataFrame, *keys: pl.Expr) -> dict[str, Any] | None:
    """The first row by ``keys`` (each sorted descending), ties by registration number."""
    if not frame.height:
        return None
    ranked = frame.sort([*keys, pl.col("rrn")], descending=[True] * len(keys) + [False])
    return ranked.row(0, named=True)


_LINKED = (pl.col("consent") == "linked").cast(pl.Int8)


def _senior(city: _City, people: pl.DataFrame) -> dict[str, Any] | None:
    """A measured centre member of 75+, else a measured member of any age, else the oldest
    user of 65+; among equals the one with claims and the most measured visits."""
    centre = _centre_visits(city.cfg, people)
    frame = city.candidates.join(centre, on="rrn", how="left").with_columns(
        pl.col("visits", "sessions").fill_null(0)
    )
    measured = pl.col("member_no").is_not_null() & (pl.col("sessions") > 0)
    frame = frame.filter(pl.col("age") >= CENTRE_AGE)
    return _best(
        frame,
        measured.cast(pl.Int8),
        (pl.col("age") >= SENIOR_AGE).cast(pl.Int8),
        _LINKED,
        (pl.col("statements") > 0).cast(pl.Int8),
        pl.col("visits"),
        pl.col("age"),
    )


def _imaging_patient(city: _City, exclude: set[str]) -> dict[str, Any] | None:
    """A user with scored studies: preferably imaged at an enrolled clinic, with an abnormal
    finding, with claims, with the most studies."""
    per_person = city.studies.group_by("rrn").agg(
        (pl.col("cl_cd") == CLINIC).any().alias("at_clinic"),
        pl.col("abnormal").any().alias("any_abnormal"),
        pl.len().alias("studies"),
    )
    frame = city.candidates.filter(~pl.col("rrn").is_in(sorted(exclude))).join(
        per_person, on="rrn", how="inner"
    )
    return _best(
        frame,
        pl.col("at_clinic").cast(pl.Int8),
        _LINKED,
        (pl.col("statements") > 0).cast(pl.Int8),
        pl.col("any_abnormal").cast(pl.Int8),
        pl.col("studies"),
    )


def _carer(city: _City, senior: dict[str, Any] | None, exclude: set[str]) -> dict[str, Any] | None:
    """An adult who could act for the senior: same dong, then district, a generation younger."""
    frame = city.candidates.filter(
        ~pl.col("rrn").is_in(sorted(exclude)) & (pl.col("age") >= ADULT_AGE)
    )
    lo, hi = CARER_AGES
    in_ages = pl.col("age").is_between(lo, hi).cast(pl.Int8)
    if senior is None:
        return _best(frame, in_ages, (pl.col("statements") > 0).cast(pl.Int8))
    gap = pl.lit(senior["age"]) - pl.col("age")
    return _best(
        frame,
        (pl.col("dong_code") == senior["dong_code"]).cast(pl.Int8),
        (pl.col("district_code") == senior["district_code"]).cast(pl.Int8),
        gap.is_between(*GENERATION).cast(pl.Int8),
        in_ages,
        (pl.col("statements") > 0).cast(pl.Int8),
    )


def _in_state(city: _City, states: tuple[str, ...], exclude: set[str]) -> dict[str, Any] | None:
    """A user in one of the consent ``states`` with claims delivered (national history the app
    then hides), preferably 65 or older, with the most statements; None when there is none."""
    frame = city.candidates.filter(
        pl.col("consent").is_in(list(states))
        & ~pl.col("rrn").is_in(sorted(exclude))
        & (pl.col("statements") > 0)
    )
    return _best(frame, (pl.col("age") >= CENTRE_AGE).cast(pl.Int8), pl.col("statements"))


def _citizen(username: str, person: dict[str, Any], who: str) -> dict[str, Any]:
    return {
        "username": username,
        "password": "",
        "role": "citizen",
        "display_name": person["name"],
        "resident_registration_number": person["rrn"],
        "who": _with_state(who, person["consent"]),
    }


def _with_state(who: str, state: str) -> str:
    """``who`` ('Korean / English') with the consent state said in both halves."""
    if state not in CONSENT_WORDS:
        return who
    ko, en = CONSENT_WORDS[state]
    first, _, second = who.partition(" / ")
    return f"{first}, {ko} / {second}, {en}"


def _person(city: _City, p: dict[str, Any]) -> tuple[str, str]:
    """'78세 여성, 서구 농성1동 거주' and its English, the start of every citizen's ``who``."""
    district_ko, district_en = city.districts[p["district_code"]]
    dong_ko, dong_en = city.dongs.get(p["dong_code"], ("", ""))
    ko = f"{p['age']}세 {SEX_KO[p['sex']]}, {district_ko} {dong_ko} 거주".replace("  ", " ")
    en = f"{p['age']}-year-old {SEX_EN[p['sex']]}, {dong_en}, {district_en}".replace(", ,", ",")
    return ko, en


def _who_senior(city: _City, p: dict[str, Any], senior: dict[str, Any] | None) -> str:
    ko, en = _person(city, p)
    if p["member_no"] is not None and p["sessions"] > 0:
        ko += f", 빛고을노인건강타운 회원({p['member_no']}, 측정 방문 {p['visits']}회)"
        en += f", seniors' centre member {p['member_no']} ({p['visits']} measured visits)"
    else:
        ko += ", 노인건강타운 측정 기록 없음"
        en += ", no seniors' centre measurements"
    return f"{ko}, 시민앱 가입 / {en}, citizen-app user"


def _who_imaging(city: _City, p: dict[str, Any], senior: dict[str, Any] | None) -> str:
    ko, en = _person(city, p)
    mine = city.studies.filter(pl.col("rrn") == p["rrn"])
    names = dict(city.institutions.select("ykiho", "name").iter_rows())
    exams = ref.param("imaging_exams").select("exam", "name_ko", "name_en")
    ykiho = _patients_institution(mine)
    exam = mine.filter(pl.col("ykiho") == ykiho)["exam"][0]
    exam_ko, exam_en = exams.filter(pl.col("exam") == exam).row(0)[1:]
    n = mine.height
    return (
        f"{ko}, {names[ykiho]}({ykiho})에서 {exam_ko} 시행, AI 판독 대상 영상 {n}건, 시민앱 가입"
        f" / {en}, {exam_en} at {names[ykiho]} ({ykiho}), {n} "
        f"{'study' if n == 1 else 'studies'} the AI services read, citizen-app user"
    )


def _who_state(city: _City, p: dict[str, Any], senior: dict[str, Any] | None) -> str:
    ko, en = _person(city, p)
    return f"{ko}, 시민앱 가입, 건강보험 청구 {p['statements']}건 / {en}, citizen-app user, " + (
        f"{p['statements']} claims statements"
    )


def _who_carer(city: _City, p: dict[str, Any], senior: dict[str, Any] | None) -> str:
    ko, en = _person(city, p)
    if senior is None:
        return (
            f"{ko}, 시민앱 가입, 가족 돌봄자 후보 / {en}, citizen-app user, family carer candidate"
        )
    if p["dong_code"] == senior["dong_code"]:
        near_ko, near_en = "같은 동", "same dong"
    elif p["district_code"] == senior["district_code"]:
        near_ko, near_en = "같은 구", "same district"
    else:
        near_ko, near_en = "다른 구", "another district"
    return (
        f"{ko}, 시민앱 가입, citizen.senior({senior['name']})의 가족 돌봄자(대리인) 후보, "
        f"{near_ko} 거주 (가족관계는 합성 데이터에 없음) / {en}, citizen-app user, family carer "
        f"(proxy) candidate for citizen.senior, {near_en} (the synthetic city has no family links)"
    )


# -- clinicians and staff -----------------------------------------------------------------------


def _patients_institution(studies: pl.DataFrame) -> str:
    """Where a patient's scored studies were taken: a clinic first, then the most studies."""
    counts = studies.group_by("ykiho", "cl_cd").len()
    ranked = counts.sort(
        (pl.col("cl_cd") == CLINIC).cast(pl.Int8), "len", "ykiho", descending=[True, True, False]
    )
    return str(ranked["ykiho"][0])


def _clinic(city: _City, imaging: dict[str, Any] | None) -> str | None:
    """The imaging patient's enrolled clinic, else an enrolled institution below the tertiary
    level that sent scored studies (so the clinician has cases), a clinic before a hospital."""
    if imaging is not None:
        ykiho = _patients_institution(city.studies.filter(pl.col("rrn") == imaging["rrn"]))
        if ykiho in city.enrolled and _class(city, ykiho) in (CLINIC, *HOSPITALS):
            return ykiho
    sent = city.studies.group_by("ykiho").len()
    enrolled = (
        city.institutions.filter(
            pl.col("ykiho").is_in(sorted(city.enrolled))
            & pl.col("cl_cd").is_in([CLINIC, *HOSPITALS])
        )
        .join(sent, on="ykiho", how="left")
        .with_columns(pl.col("len").fill_null(0))
    )
    if not enrolled.height:
        return None
    ranked = enrolled.sort(
        (pl.col("len") > 0).cast(pl.Int8),
        (pl.col("cl_cd") == CLINIC).cast(pl.Int8),
        "len",
        "ykiho",
        descending=[True, True, True, False],
    )
    return str(ranked["ykiho"][0])


def _class(city: _City, ykiho: str) -> str:
    return str(city.institutions.filter(pl.col("ykiho") == ykiho)["cl_cd"][0])


def _clinicians(
    city: _City, imaging: dict[str, Any] | None, senior: dict[str, Any] | None
) -> list[dict[str, Any]]:
    inst = city.institutions
    dept = dict(ref.codes("departments").select("dgsbjt_cd", "name_ko").iter_rows())
    dept_en = dict(ref.codes("departments").select("dgsbjt_cd", "name_en").iter_rows())
    names = _staff_names(city.cfg)
    out: list[dict[str, Any]] = []

    clinic = _clinic(city, imaging)
    if clinic is not None:
        row = inst.filter(pl.col("ykiho") == clinic).row(0, named=True)
        main = row["main_department"]
        sent = city.studies.filter(pl.col("ykiho") == clinic).height
        e = city.enrolled[clinic]
        sees = imaging is not None and clinic in set(
            city.studies.filter(pl.col("rrn") == imaging["rrn"])["ykiho"].to_list()
        )
        title_ko, title_en = ("원장", "running") if row["cl_cd"] == CLINIC else ("과장", "at")
        ko = (
            f"{row['name']} {dept[main]} {title_ko}, AI 플랫폼 {e.round}차 참여기관, "
            f"AI 판독 대상 영상 {sent}건 전송"
        )
        en = (
            f"{dept_en[main].lower()} doctor {title_en} {row['name']}, AI platform round "
            f"{e.round}, sent {sent} studies the AI services read"
        )
        if sees:
            ko += ", citizen.imaging 진료"
            en += ", treats citizen.imaging"
        out.append(_clinician("clinic.doctor", names["clinic.doctor"], clinic, f"{ko} / {en}"))

    district = senior["district_code"] if senior else str(inst["district_code"].min())
    centres = inst.filter(
        (pl.col("cl_cd") == HEALTH_CENTRE) & (pl.col("district_code") == district)
    ).sort("ykiho")
    if centres.height:
        row = centres.row(0, named=True)
        district_en = city.districts[district][1]
        why_ko = ", citizen.senior 거주 구" if senior else ""
        why_en = ", the senior's district" if senior else ""
        who = (
            f"{row['name']} 진료의사{why_ko} / doctor at the {district_en} public health centre"
            f"{why_en}"
        )
        out.append(_clinician("phc.doctor", names["phc.doctor"], row["ykiho"], who))

    tertiary = inst.filter(
        (pl.col("cl_cd") == TERTIARY) & pl.col("ykiho").is_in(sorted(city.enrolled))
    ).sort("ykiho")
    if tertiary.height:
        row = tertiary.row(0, named=True)
        who = (
            f"{row['name']} 영상의학과 전문의, AI 플랫폼 원격판독 / radiologist at {row['name']} "
            "(tertiary hospital), remote reading for the AI platform"
        )
        out.append(
            _clinician("hospital.radiologist", names["hospital.radiologist"], row["ykiho"], who)
        )
    return out


def _clinician(username: str, name: str, ykiho: str, who: str) -> dict[str, Any]:
    return {
        "username": username,
        "password": "",
        "role": "clinician",
        "display_name": name,
        "institution": ykiho,
        "who": who,
    }


def _staff_accounts(cfg: CityConfig) -> list[dict[str, Any]]:
    names = _staff_names(cfg)
    return [
        {
            "username": "city.official",
            "password": "",
            "role": "official",
            "display_name": names["city.official"],
            "who": "광주광역시 건강정책과 주무관 / officer, health policy division, "
            "Gwangju Metropolitan City",
        },
        {
            "username": "platform.admin",
            "password": "",
            "role": "admin",
            "display_name": names["platform.admin"],
            "who": "AI 공공보건 플랫폼 운영 관리자 / administrator of the AI public-health "
            "platform",
        },
    ]


def _staff_names(cfg: CityConfig) -> dict[str, str]:
    """Names of the staff accounts, drawn like residents' names (working age: born 1965-1994),
    all in one draw so that every name depends on the seed alone."""
    rng = stream(cfg.seed, "accounts", "staff")
    n = len(STAFF)
    sex = np.where(rng.random(n) < 0.5, "M", "F")
    born = np.array([np.datetime64(date(int(y), 6, 1), "D") for y in rng.integers(1965, 1995, n)])
    return dict(zip(STAFF, (str(x) for x in _names(rng, sex, born)), strict=True))


def _passwords(cfg: CityConfig, accounts: list[dict[str, Any]]) -> None:
    """Two short words and four digits, e.g. ``maple-river-4821`` (14 to 16 characters), from
    each account's own stream: adding an account never changes another's password."""
    used: set[str] = set()
    for account in sorted(accounts, key=lambda a: a["username"]):
        rng = stream(cfg.seed, "accounts", "password", account["username"])
        while True:
            first, second = rng.choice(len(WORDS), 2, replace=False)
            password = f"{WORDS[first]}-{WORDS[second]}-{int(rng.integers(1000, 10000))}"
            if password not in used:
                break
        used.add(password)
        account["password"] = password
