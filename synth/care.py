"""Who goes where, and when: the visits behind every claim.

Three kinds of visit, each drawn from published figures (see the params files):

* chronic follow-up: every chronic condition is managed at a home institution on a repeat
  schedule (4, 8 or 12 weeks for the cardiometabolic conditions), with a repeat prescription each
  time, which is what makes Korean claims so dense for older people;
* acute episodes: the rest of each person's visits, up to the outpatient visit rate of their age
  band, spread over the frequent-diagnosis categories with their seasons;
* hospital admissions at the inpatient rate of the age band.

``CareModel.visits`` turns a slice of the population into a visits frame with one row per visit:
``pid``, ``day`` (offset from the window's first day), ``inst`` (row of the institutions frame),
``kind`` ("chronic" | "acute" | "inpatient"), ``reason`` (condition, acute category or admission
reason), ``kcd`` (main diagnosis), ``subs`` (other diagnoses, ``|``-separated), ``los`` (days
in hospital, 1 for outpatients), ``first`` (first visit of its episode), ``regimens``
(``|``-separated regimen ids, empty without a prescription) and ``rx_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Final

import numpy as np
import polars as pl

from synth import reference as ref
from synth.adverse import planted_visits
from synth.calendar import national_holiday
from synth.config import CityConfig
from synth.population import DAYS_PER_YEAR, age_years
from synth.rng import stream

# Preference among the departments a condition lists, in order (a modelling choice).
DEPARTMENT_PREFERENCE: Final = (0.55, 0.25, 0.12, 0.05, 0.03)
# Share of visits made in the patient's own district (modelling choice; most primary care is local).
LOCAL_SHARE: Final = 0.8
# Acute visits never fall below this fraction of the age band's visit rate, however many chronic
# follow-ups a person has.
ACUTE_FLOOR: Final = 0.15
# Acute age bands of acute_conditions.csv.
ACUTE_BANDS: Final = ((0, 9), (10, 19), (20, 39), (40, 64), (65, 200))
SEASONS: Final = {
    "winter": (12, 1, 2),
    "spring": (3, 4, 5),
    "summer": (6, 7, 8),
    "autumn": (9, 10, 11),
}
# Classes with every department, and their share of visits (params/institutions.csv).
HOSPITAL_CLASSES: Final = ("01", "11", "21")
INPATIENT_CLASSES: Final = {"11": 0.45, "21": 0.35, "01": 0.2}
ADULT_FROM: Final = 12  # child regimens (syrups) below this age
PAEDIATRIC_BEFORE: Final = 15  # paediatrics sees children under this age
# Overlapping supplies of chronic medicines, calibrated together so that about one in ten patients
# receiving antihypertensives or lipid-lowering drugs in a month has the same ingredient on two
# prescriptions with overlapping days, as Kim et al. found in Korea's claims for December 2009
# (Int J Clin Pharm 2015;37:76-85: 9.9 % and 8.9 % of patients, between prescriptions): repeat
# visits a few days before the last supply ends, and parallel visits to another institution, the
# healthcare switching that Shin et al. found in a third of elderly diabetic patients a year, with
# overlapping anti-diabetic supplies rising with it (J Korean Med Sci 2011;26:1461-8).
EARLY_REFILL: Final = 0.1  # share of repeat visits 1-3 days before the last supply ends
PARALLEL_PER_YEAR: Final = 0.15  # visits per condition group and year to a second institution


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split("|") if v]


def _weights(pairs: str | None) -> tuple[list[str], np.ndarray]:
    """Parse ``a:0.6|b:0.4`` into names and normalised weights."""
    items = [p.split(":") for p in _split(pairs)]
    if not items:
        return [], np.zeros(0)
    w = np.array([float(v) for _, v in items])
    return [k for k, _ in items], w / w.sum()


def _choose_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row of a (rows x options) weight matrix, proportional to the weights."""
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1:]
    u = rng.random((weights.shape[0], 1)) * total
    chosen: np.ndarray = np.minimum((u > cum).sum(axis=1), weights.shape[1] - 1)
    return chosen


def _band_index(age: np.ndarray, bands: tuple[tuple[int, int], ...]) -> np.ndarray:
    out = np.zeros(len(age), dtype=np.int64)
    for i, (lo, hi) in enumerate(bands):
        out[(age >= lo) & (age <= hi)] = i
    return out


def _table_rate(age: np.ndarray, table: pl.DataFrame, column: str) -> np.ndarray:
    rate = np.zeros(len(age))
    for row in ref.floats(table, column).iter_rows(named=True):
        rate[(age >= int(row["age_lo"])) & (age <= int(row["age_hi"]))] = row[column]
    return rate


@dataclass(frozen=True)
class _Chronic:
    condition: str
    codes: list[str]
    group: str
    departments: list[str]
    intervals: np.ndarray
    interval_p: np.ndarray
    regimens: list[str]
    priority: int


class InstitutionPicker:
    """Chooses where a visit happens: a department (or the district's health centre), then a
    class by its share of visits, then an institution, in the patient's district when possible."""

    def __init__(self, institutions: pl.DataFrame) -> None:
        self.inst = institutions
        shares = dict(
            ref.floats(ref.param("institutions"), "share_of_visits")
            .select("cl_cd", "share_of_visits")
            .iter_rows()
        )
        cl = institutions["cl_cd"].to_numpy()
        main = institutions["main_department"].to_numpy()
        district = institutions["district_code"].to_numpy()
        # token -> list of (class weight, indices by district, all indices)
        self._options: dict[str, list[tuple[float, dict[str, np.ndarray], np.ndarray]]] = {}
        tokens = set(ref.codes("departments")["dgsbjt_cd"].to_list()) | {"PHC"}
        for token in sorted(tokens):
            groups: list[tuple[float, np.ndarray]] = []
            if token == "PHC":
                groups.append((1.0, np.flatnonzero(cl == "71")))
            elif token == "49":
                groups += [(0.9, np.flatnonzero(cl == "51")), (0.07, np.flatnonzero(cl == "41"))]
                groups.append((0.03, np.flatnonzero(cl == "01")))
            elif token == "80":
                groups += [(0.93, np.flatnonzero(cl == "93")), (0.07, np.flatnonzero(cl == "92"))]
            else:
                clinic = np.flatnonzero((cl == "31") & (main == token))
                groups.append((float(shares["31"]), clinic))
                for h in HOSPITAL_CLASSES:
                    groups.append((float(shares[h]), np.flatnonzero(cl == h)))
            opts = []
            for weight, idx in groups:
                if len(idx):
                    by_d = {d: idx[district[idx] == d] for d in np.unique(district[idx])}
                    opts.append((weight, by_d, idx))
            self._options[token] = opts

    def pick(self, rng: np.random.Generator, token: np.ndarray, district: np.ndarray) -> np.ndarray:
        """An institution row for each (department token, patient district) pair; -1 if none."""
        out = np.full(len(token), -1, dtype=np.int64)
        for t in np.unique(token):
            rows = np.flatnonzero(token == t)
            opts = self._options.get(str(t), [])
            if not opts:
                continue
            w = np.array([o[0] for o in opts])
            which = rng.choice(len(opts), size=len(rows), p=w / w.sum())
            local = rng.random(len(rows)) < LOCAL_SHARE
            u = rng.random(len(rows))
            for k, (_, by_d, every) in enumerate(opts):
                sel = rows[which == k]
                if not len(sel):
                    continue
                chosen = every[(u[which == k] * len(every)).astype(np.int64)]
                loc = local[which == k]
                for d in np.unique(district[sel]):
                    here = by_d.get(str(d))
                    mask = (district[sel] == d) & loc
                    if here is not None and mask.any():
                        chosen[mask] = here[(u[which == k][mask] * len(here)).astype(np.int64)]
                out[sel] = chosen
        return out

    def preferred_token(
        self,
        rng: np.random.Generator,
        list_id: np.ndarray,
        lists: list[list[str]],
        age: np.ndarray,
    ) -> np.ndarray:
        """Pick a department per row from its ordered list; paediatrics only for children.

        Args:
            list_id: For each row, which of ``lists`` holds its departments in preference order.
            lists: The distinct department lists (one per condition or category).
            age: Each row's age; children under 15 go to paediatrics first where it is listed.
        """
        out = np.empty(len(list_id), dtype=object)
        child = age < PAEDIATRIC_BEFORE
        for lid in np.unique(list_id):
            options = lists[int(lid)]
            for is_child in (False, True):
                rows = np.flatnonzero((list_id == lid) & (child == is_child))
                if not len(rows):
                    continue
                opts = [d for d in options if d != "11" or is_child]
                if is_child and "11" in options:
                    opts = ["11", *[d for d in opts if d != "11"]]
                opts = opts or options
                w = np.array(
                    [
                        DEPARTMENT_PREFERENCE[min(k, len(DEPARTMENT_PREFERENCE) - 1)]
                        for k in range(len(opts))
                    ]
                )
                out[rows] = np.array(opts, dtype=object)[
                    rng.choice(len(opts), size=len(rows), p=w / w.sum())
                ]
        return out


class CareModel:
    """The visit model, prepared once per process and applied to slices of the population."""

    def __init__(self, cfg: CityConfig, institutions: pl.DataFrame) -> None:
        self.cfg = cfg
        self.picker = InstitutionPicker(institutions)
        care = ref.param("chronic_care")
        self.chronic: dict[str, _Chronic] = {}
        for i, row in enumerate(care.iter_rows(named=True)):
            weights = np.array([float(w) for w in _split(row["interval_weights"])])
            self.chronic[row["condition"]] = _Chronic(
                condition=row["condition"],
                codes=_split(row["kcd"]),
                group=row["care_group"],
                departments=_split(row["departments"]),
                intervals=np.array([int(v) for v in _split(row["intervals"])]),
                interval_p=weights / weights.sum(),
                regimens=_split(row["regimens"]),
                priority=i,
            )
        self.regimen_weight = {
            r: float(w)
            for r, w in ref.param("regimens")
            .select("regimen", "weight")
            .unique("regimen")
            .iter_rows()
        }
        self.acute = ref.floats(
            ref.param("acute_conditions"),
            *[f"share_{a}" for a in ("0_9", "10_19", "20_39", "40_64", "65_up")],
            "visits",
            "rx",
        ).with_columns(pl.col("days").cast(pl.Int64))
        self.inpatient_reasons = ref.floats(
            ref.param("inpatient_reasons"),
            "los_days",
            *[f"w_{a}" for a in ("0_4", "5_19", "20_39", "40_64", "65_79", "80_up")],
        )

    # -- chronic follow-up -------------------------------------------------------------------

    def _chronic_visits(
        self,
        rng: np.random.Generator,
        people: pl.DataFrame,
        conditions: pl.DataFrame,
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Follow-up visits, and the expected follow-ups per year of each person in ``people``."""
        per_year = np.zeros(people.height)
        if not conditions.height:
            return pl.DataFrame(), per_year
        names = list(self.chronic)  # in priority order
        cond = (
            conditions["condition"].replace_strict({c: i for i, c in enumerate(names)}).to_numpy()
        )
        # Each condition keeps its code and regimen for the whole window.
        code = np.empty(len(cond), dtype=object)
        regimen = np.empty(len(cond), dtype=object)
        for ci in np.unique(cond):
            rows = np.flatnonzero(cond == ci)
            c = self.chronic[names[int(ci)]]
            # The first code is the usual one (four in five patients), the rest share the remainder.
            alt = rng.integers(1, max(len(c.codes), 2), len(rows)) % len(c.codes)
            code[rows] = np.where(rng.random(len(rows)) < 0.8, c.codes[0], np.array(c.codes)[alt])
            w = np.array([self.regimen_weight[r] for r in c.regimens])
            regimen[rows] = np.array(c.regimens, dtype=object)[
                rng.choice(len(c.regimens), size=len(rows), p=w / w.sum())
            ]
        groups = (
            pl.DataFrame(
                {
                    "pid": conditions["pid"],
                    "prio": cond,
                    "group": [self.chronic[names[int(ci)]].group for ci in cond],
                    "code": code.astype(str),
                    "regimen": regimen.astype(str),
                    "onset": conditions["onset"],
                }
            )
            .sort("pid", "group", "prio")
            .group_by("pid", "group", maintain_order=True)
            .agg(pl.col("prio").first(), "code", "regimen", pl.col("onset").min())
            .join(
                people.select("pid", "district_code").with_row_index("row"),
                on="pid",
                how="left",
                maintain_order="left",
            )
        )
        n = groups.height
        idx = groups["row"].to_numpy().astype(np.int64)
        first = groups["prio"].to_numpy()
        interval = np.zeros(n, dtype=np.int64)
        for ci in np.unique(first):
            rows = np.flatnonzero(first == ci)
            c = self.chronic[names[int(ci)]]
            interval[rows] = c.intervals[
                rng.choice(len(c.intervals), size=len(rows), p=c.interval_p)
            ]
        age = self._age(people)[idx]
        token = self.picker.preferred_token(
            rng, first, [self.chronic[c].departments for c in names], age
        )
        inst = self.picker.pick(rng, token, groups["district_code"].to_numpy())

        pf, pt = self._presence(people)
        # Follow-up starts at diagnosis when that falls in the span (a history reaching back
        # before the onset), else at a random point of the first interval.
        onset = (
            groups["onset"].to_numpy().astype("datetime64[D]") - np.datetime64(self.cfg.origin)
        ).astype(np.int64)
        start = np.where(
            onset > pf[idx], onset, pf[idx] + (rng.random(n) * interval).astype(np.int64)
        )
        count = np.where(start < pt[idx], -(-(pt[idx] - start) // interval), 0)
        np.add.at(per_year, idx, DAYS_PER_YEAR / interval)
        total = int(count.sum())
        rep = np.repeat(np.arange(n), count)
        step = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        # Each repeat visit comes when the last supply runs out, up to 3 days late, or (a share
        # EARLY_REFILL of them) 1 to 3 days early, overlapping the last supply.
        early = rng.random(total) < EARLY_REFILL
        slip = np.where(early, -rng.integers(1, 4, total), rng.integers(0, 4, total))
        gaps = np.where(step > 0, interval[rep] + slip, 0)
        running = np.cumsum(gaps)
        base = np.zeros(n, dtype=np.int64)
        base[count > 0] = running[(np.cumsum(count) - count)[count > 0]]
        day = start[rep] + running - np.repeat(base, count)
        keep = (inst[rep] >= 0) & (day < pt[idx][rep])
        rep, day, step = rep[keep], day[keep], step[keep]
        home = pl.DataFrame(
            {
                "pid": groups["pid"].to_numpy()[rep],
                "day": day,
                "inst": inst[rep],
                "dept": token[rep].astype(str),
                "rx_days": interval[rep],
                "first": step == 0,
            }
        )
        prep, parallel = self._parallel(rng, groups, token, inst, interval, start, pt[idx])
        detail = groups.select(
            pl.col("prio").replace_strict(dict(enumerate(names))).alias("reason"),
            pl.col("code").list.first().alias("kcd"),
            pl.col("code").list.slice(1).list.join("|").alias("subs"),
            pl.col("regimen").list.join("|").alias("regimens"),
        )
        frame = pl.concat(
            [home.hstack(detail[rep]), parallel.hstack(detail[prep])], how="vertical_relaxed"
        )
        return frame.with_columns(pl.lit("chronic").alias("kind"), pl.lit(1).alias("los")), per_year

    def _parallel(
        self,
        rng: np.random.Generator,
        groups: pl.DataFrame,
        token: np.ndarray,
        inst: np.ndarray,
        interval: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
    ) -> tuple[np.ndarray, pl.DataFrame]:
        """Parallel care: now and then a patient takes a condition group to another institution,
        which prescribes the same regimen while the home supply still runs. Returns each visit's
        group (row of ``groups``) and the visits (chronic visit columns but the details)."""
        par = rng.poisson(PARALLEL_PER_YEAR * np.maximum(end - start, 0) / DAYS_PER_YEAR)
        rows = np.repeat(np.arange(groups.height), par)
        other = self.picker.pick(rng, token[rows], groups["district_code"].to_numpy()[rows])
        day = start[rows] + (rng.random(len(rows)) * (end[rows] - start[rows])).astype(np.int64)
        moved = (other >= 0) & (other != inst[rows])
        rows, day, other = rows[moved], day[moved], other[moved]
        return rows, pl.DataFrame(
            {
                "pid": groups["pid"].to_numpy()[rows],
                "day": day,
                "inst": other,
                "dept": token[rows].astype(str),
                "rx_days": interval[rows],
                "first": np.zeros(len(rows), dtype=bool),
            }
        )

    # -- acute episodes ----------------------------------------------------------------------

    def _acute_visits(
        self,
        rng: np.random.Generator,
        people: pl.DataFrame,
        chronic_per_year: np.ndarray,
        chronic_subs: np.ndarray,
    ) -> pl.DataFrame:
        pf, pt = self._presence(people)
        acute_rate, mean_visits, w_person = self.acute_profile(people, chronic_per_year)
        cats = self.acute
        visits_mean = cats["visits"].to_numpy()
        years = (pt - pf) / DAYS_PER_YEAR
        episodes = rng.poisson(acute_rate * years / mean_visits)
        owner = np.repeat(np.arange(people.height), episodes)
        m = len(owner)
        if not m:
            return pl.DataFrame()
        day = pf[owner] + (rng.random(m) * (pt[owner] - pf[owner])).astype(np.int64)
        month = (np.datetime64(self.cfg.origin, "D") + day.astype("timedelta64[D]")).astype(
            "datetime64[M]"
        ).astype(np.int64) % 12 + 1
        cat = _choose_rows(rng, w_person[owner] * season_weights(cats, month))
        n_visits = 1 + np.minimum(rng.poisson(np.maximum(visits_mean[cat] - 1, 0)), 7)

        codes = [_split(c) for c in cats["kcd"].to_list()]
        # The category's first code is the usual one (half the episodes); the others share the rest.
        usual = rng.random(m) < 0.5
        other = rng.integers(0, 1 << 30, m)
        code = np.array(
            [
                codes[c][0]
                if usual[i] or len(codes[c]) == 1
                else codes[c][1 + other[i] % (len(codes[c]) - 1)]
                for i, c in enumerate(cat)
            ],
            dtype=object,
        )
        return self.episode_visits(rng, people, owner, day, cat, code, n_visits, chronic_subs)

    def acute_profile(
        self, people: pl.DataFrame, chronic_per_year: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each person's acute visits per year, mean visits per acute episode, and the weight of
        every acute category (people x categories), by age band and sex (a category with a sex
        weighs 0 for the other). ``synth.adverse`` draws its planted episodes from the same."""
        age = self._age(people)
        sex = people["sex"].to_numpy()
        target = _table_rate(age, ref.param("visit_rates"), "visits_per_year")
        acute_rate = np.maximum(target - chronic_per_year, ACUTE_FLOOR * target)
        cats = self.acute
        share_cols = [f"share_{a}" for a in ("0_9", "10_19", "20_39", "40_64", "65_up")]
        shares = cats.select(share_cols).to_numpy()  # (cats, bands)
        visits_mean = cats["visits"].to_numpy()
        cat_sex = cats["sex"].fill_null("").to_numpy()
        band = _band_index(age, ACUTE_BANDS)
        sex_ok = (cat_sex[None, :] == "") | (cat_sex[None, :] == sex[:, None])  # (people, cats)
        w_person = shares.T[band] * sex_ok
        mean_visits = (w_person * visits_mean).sum(axis=1) / w_person.sum(axis=1)
        return acute_rate, mean_visits, w_person

    def episode_visits(
        self,
        rng: np.random.Generator,
        people: pl.DataFrame,
        owner: np.ndarray,
        day: np.ndarray,
        cat: np.ndarray,
        code: np.ndarray,
        n_visits: np.ndarray,
        chronic_subs: np.ndarray,
    ) -> pl.DataFrame:
        """The visits of acute episodes: where each happens, its follow-ups, prescriptions and
        sub-diagnoses.

        Args:
            owner: Each episode's row in ``people``.
            day: Each episode's first day (offset from the window's first day).
            cat: Each episode's acute category (row of acute_conditions.csv).
            code: Each episode's main diagnosis (KCD).
            n_visits: Each episode's number of visits, follow-ups included.
            chronic_subs: Each person's chronic conditions as sub-diagnoses (``|``-separated).
        """
        cats = self.acute
        age = self._age(people)
        _, pt = self._presence(people)
        depts = [_split(d) for d in cats["departments"].to_list()]
        m = len(owner)
        token = self.picker.preferred_token(rng, cat, depts, age[owner])
        inst = self.picker.pick(rng, token, people["district_code"].to_numpy()[owner])

        rep = np.repeat(np.arange(m), n_visits)
        step = np.arange(len(rep)) - np.repeat(np.cumsum(n_visits) - n_visits, n_visits)
        # Follow-ups come 2 to 7 days after the previous visit of the episode.
        gaps = rng.integers(2, 8, len(rep)) * (step > 0)
        running = np.cumsum(gaps)
        vday = day[rep] + running - np.repeat(running[np.cumsum(n_visits) - n_visits], n_visits)
        keep = (vday < pt[owner][rep]) & (inst[rep] >= 0)
        rep, vday, step = rep[keep], vday[keep], step[keep]

        regimens = self._acute_regimens(rng, cat[rep], age[owner][rep] < ADULT_FROM)
        pid = people["pid"].to_numpy()
        # A third of acute visits also list the person's chronic conditions as sub-diagnoses.
        subs = np.where(rng.random(len(rep)) < 0.3, chronic_subs[owner][rep], "")
        return pl.DataFrame(
            {
                "pid": pid[owner][rep],
                "day": vday,
                "inst": inst[rep],
                "reason": cats["category"].to_numpy()[cat[rep]],
                "kcd": code[rep].astype(str),
                "subs": subs.astype(str),
                "regimens": regimens.astype(str),
                "rx_days": cats["days"].to_numpy()[cat[rep]],
                "first": step == 0,
                "dept": token[rep].astype(str),
            }
        ).with_columns(pl.lit("acute").alias("kind"), pl.lit(1).alias("los"))

    def _acute_regimens(
        self, rng: np.random.Generator, visit_cat: np.ndarray, child: np.ndarray
    ) -> np.ndarray:
        """A regimen per acute visit ("" without a prescription): the category's share of
        visits gets one, drawn from the adult or child regimens of the category."""
        cats = self.acute
        has_rx = rng.random(len(visit_cat)) < cats["rx"].to_numpy()[visit_cat]
        options = {
            False: [_weights(v) for v in cats["regimens_adult"].to_list()],
            True: [_weights(v) for v in cats["regimens_child"].to_list()],
        }
        regimens = np.full(len(visit_cat), "", dtype=object)
        for c in np.unique(visit_cat):
            for is_child in (False, True):
                names, w = options[is_child][int(c)]
                rows = np.flatnonzero((visit_cat == c) & (child == is_child) & has_rx)
                if len(rows) and names:
                    pick = rng.choice(len(names), size=len(rows), p=w)
                    regimens[rows] = np.array(names, dtype=object)[pick]
        return regimens

    # -- admissions --------------------------------------------------------------------------

    def _admissions(
        self, rng: np.random.Generator, people: pl.DataFrame, chronic_subs: np.ndarray
    ) -> pl.DataFrame:
        age = self._age(people)
        pf, pt = self._presence(people)
        rate = _table_rate(age, ref.param("inpatient_rates"), "admissions_per_year")
        n = rng.poisson(rate * (pt - pf) / DAYS_PER_YEAR)
        owner = np.repeat(np.arange(people.height), n)
        m = len(owner)
        if not m:
            return pl.DataFrame()
        reasons = self.inpatient_reasons
        bands = ((0, 4), (5, 19), (20, 39), (40, 64), (65, 79), (80, 200))
        w = reasons.select([c for c in reasons.columns if c.startswith("w_")]).to_numpy().T
        reason = _choose_rows(rng, w[_band_index(age[owner], bands)])
        los_mean = reasons["los_days"].to_numpy()[reason]
        los = np.maximum(1, np.round(rng.lognormal(np.log(los_mean) - 0.18, 0.6))).astype(np.int64)
        day = pf[owner] + (rng.random(m) * (pt[owner] - pf[owner])).astype(np.int64)
        classes = np.array(list(INPATIENT_CLASSES))
        p = np.array(list(INPATIENT_CLASSES.values()))
        token = reasons["department"].to_numpy()[reason]
        # Admissions go to hospital classes only: pick among them directly.
        cl = classes[rng.choice(len(classes), size=m, p=p / p.sum())]
        inst = self._pick_hospital(rng, cl, people["district_code"].to_numpy()[owner])
        pid = people["pid"].to_numpy()
        return pl.DataFrame(
            {
                "pid": pid[owner],
                "day": day,
                "inst": inst,
                "reason": reasons["reason"].to_numpy()[reason],
                "kcd": reasons["kcd"].to_numpy()[reason],
                "subs": chronic_subs[owner].astype(str),
                "regimens": [""] * m,
                "rx_days": np.zeros(m, dtype=np.int64),
                "first": np.ones(m, dtype=bool),
                "los": los,
                "dept": token,
            }
        ).with_columns(pl.lit("inpatient").alias("kind"))

    def _pick_hospital(
        self, rng: np.random.Generator, cl: np.ndarray, district: np.ndarray
    ) -> np.ndarray:
        inst = self.picker.inst
        out = np.empty(len(cl), dtype=np.int64)
        codes = inst["cl_cd"].to_numpy()
        dist = inst["district_code"].to_numpy()
        u = rng.random(len(cl))
        local = rng.random(len(cl)) < 0.6
        for c in np.unique(cl):
            every = np.flatnonzero(codes == c)
            for d in np.unique(district):
                sel = (cl == c) & (district == d)
                here = every[dist[every] == d]
                pool = np.where(local[sel] & (len(here) > 0), 1, 0)
                pick_all = every[(u[sel] * len(every)).astype(np.int64)]
                if len(here):
                    pick_here = here[(u[sel] * len(here)).astype(np.int64)]
                    out[sel] = np.where(pool == 1, pick_here, pick_all)
                else:
                    out[sel] = pick_all
        return out

    # -- all together ------------------------------------------------------------------------

    def _age(self, people: pl.DataFrame) -> np.ndarray:
        birth = people["birth_date"].to_numpy().astype("datetime64[D]")
        first = people["present_from"].to_numpy().astype("datetime64[D]")
        return age_years(birth, first)

    def _presence(self, people: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        start = np.datetime64(self.cfg.origin, "D")
        pf = (people["present_from"].to_numpy().astype("datetime64[D]") - start).astype(np.int64)
        pt = (people["present_to"].to_numpy().astype("datetime64[D]") - start).astype(np.int64)
        return pf, pt

    def visits(
        self, rng: np.random.Generator, people: pl.DataFrame, conditions: pl.DataFrame
    ) -> pl.DataFrame:
        """Every visit of the people in this slice, sorted by person and day."""
        return self.visits_and_planted(rng, people, conditions)[0]

    def visits_and_planted(
        self, rng: np.random.Generator, people: pl.DataFrame, conditions: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``visits``, and apart from them the visits the planted adverse drug effects add
        (``synth.adverse``, from their own stream): the city builds their claims in a chunk of
        their own, so every other claim stays as it is for a seed."""
        chronic, per_year = self._chronic_visits(rng, people, conditions)
        # Each person's chronic conditions (usual codes, at most three) as sub-diagnoses.
        usual = {c: m.codes[0] for c, m in self.chronic.items()}
        subs = (
            conditions.with_columns(pl.col("condition").replace_strict(usual).alias("code"))
            .group_by("pid")
            .agg(pl.col("code").head(3).str.join("|"))
        )
        chronic_subs = (
            people.select("pid")
            .join(subs, on="pid", how="left", maintain_order="left")["code"]
            .fill_null("")
            .to_numpy()
            .astype(object)
        )
        frames = [chronic]
        for span in self._spans(people):
            rows = span["_row"].to_numpy()
            frames.append(self._acute_visits(rng, span, per_year[rows], chronic_subs[rows]))
            frames.append(self._admissions(rng, span, chronic_subs[rows]))
        frames = [f for f in frames if f.height]
        out = self._close_holidays(self._typed(frames), people)
        extra: list[pl.DataFrame] = []
        if out.height:
            # The planted drug effects, from their own stream (the slice named by its first pid).
            planted = stream(self.cfg.seed, "adverse", int(people["pid"][0]))
            extra = planted_visits(self, planted, people, out, per_year, chronic_subs)
        added = self._close_holidays(self._typed(extra), people)
        order = ("pid", "day", "kind", "reason")
        return out.sort(*order), added.sort(*order)

    @staticmethod
    def _typed(frames: list[pl.DataFrame]) -> pl.DataFrame:
        """Visit frames as one, in the visits' columns and types."""
        columns = {
            "pid": pl.Int32,
            "day": pl.Int32,
            "inst": pl.Int32,
            "kind": pl.Utf8,
            "reason": pl.Utf8,
            "kcd": pl.Utf8,
            "subs": pl.Utf8,
            "los": pl.Int32,
            "first": pl.Boolean,
            "regimens": pl.Utf8,
            "rx_days": pl.Int32,
            "dept": pl.Utf8,
        }
        return pl.concat(
            [f.select([pl.col(c).cast(t) for c, t in columns.items()]) for f in frames]
            or [pl.DataFrame(schema=columns)]
        )

    def _spans(self, people: pl.DataFrame) -> list[pl.DataFrame]:
        """The people present in each span whose acute visits and admissions are drawn together:
        every calendar year of a history before ``start``, then the window. Presence is clipped
        to the span, so the age-dependent rates use each person's age at the span's start (a
        child of 2010 is an adult by 2025). ``_row`` is the row in ``people``."""
        origin, start = self.cfg.origin, self.cfg.start
        cuts = [origin, *(date(y, 1, 1) for y in range(origin.year + 1, start.year + 1))]
        cuts = sorted({c for c in cuts if c < start} | {start, self.cfg.end})
        indexed = people.with_row_index("_row")
        return [
            indexed.with_columns(
                pl.col("present_from").clip(lower_bound=pl.lit(lo)),
                pl.col("present_to").clip(upper_bound=pl.lit(hi)),
            ).filter(pl.col("present_from") < pl.col("present_to"))
            for lo, hi in pairwise(cuts)
        ]

    def _close_holidays(self, visits: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
        """Clinics close on Sundays and national public holidays: an outpatient visit drawn on
        such a day moves to the next open day, or to the last open day before it when the next
        one is past the person's window (death, moving away)."""
        closed = np.array(
            [d.weekday() == 6 or national_holiday(d) is not None for d in self._days()], dtype=bool
        )
        # For every day of the window: the next and the previous open day (offsets).
        n = len(closed)
        nxt = np.full(n + 1, n, dtype=np.int64)
        for i in range(n - 1, -1, -1):
            nxt[i] = nxt[i + 1] if closed[i] else i
        prv = np.full(n, -1, dtype=np.int64)
        last = -1
        for i in range(n):
            last = last if closed[i] else i
            prv[i] = last
        pf, pt = self._presence(people)
        window = pl.DataFrame({"pid": people["pid"], "_pf": pf, "_pt": pt})
        v = visits.join(window, on="pid", how="left", maintain_order="left")
        day = v["day"].to_numpy().astype(np.int64)
        outpatient = (v["kind"] != "inpatient").to_numpy()
        move = outpatient & closed[np.clip(day, 0, n - 1)]
        after = nxt[np.clip(day, 0, n - 1)]
        before = prv[np.clip(day, 0, n - 1)]
        ok_after = after < v["_pt"].to_numpy()
        ok_before = before >= v["_pf"].to_numpy()
        new_day = np.where(move & ok_after, after, np.where(move & ok_before, before, day))
        return v.with_columns(pl.Series("day", new_day, dtype=pl.Int32)).drop("_pf", "_pt")

    def _days(self) -> list[date]:
        span = (self.cfg.end - self.cfg.origin).days
        return [self.cfg.origin + timedelta(days=i) for i in range(span)]


def season_weights(categories: pl.DataFrame, month: np.ndarray) -> np.ndarray:
    """The seasonal multiplier of every acute category (columns) in each month given (rows)."""
    season = np.ones((len(month), categories.height))
    for j, spec in enumerate(categories["season"].fill_null("").to_list()):
        for name, mult in zip(*_weights_raw(spec), strict=True):
            season[np.isin(month, SEASONS[name]), j] = mult
    return season


def _weights_raw(spec: str) -> tuple[list[str], list[float]]:
    """Parse ``winter:1.6|summer:0.6`` into names and their multipliers, unnormalised."""
    items = [p.split(":") for p in _split(spec)]
    return [k for k, _ in items], [float(v) for _, v in items]
