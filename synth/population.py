"""The people of the synthetic city: who lives here, who is born, moves in, moves out or dies.

``generate_people`` returns one row per person ever resident during the window. Everything else
in the city (conditions, visits, centre measurements, app events) is drawn for these people, and
the citizens registry delivers them. Columns:

``pid`` (Int32, stable row index), ``rrn`` (resident registration number ``YYMMDD-Gxxxxxx``),
``name``, ``sex`` ("M"/"F"), ``birth_date``, ``district_code`` (5 digits), ``dong_code`` (7),
``address`` (road address below the dong), ``insurance`` (HIRA INSUP_TP_CD: "4" health insurance,
"5" medical aid), ``present_from`` (first day resident), ``present_to`` (first day no longer
resident, exclusive; the window's end if still resident), ``arrival`` ("baseline" | "birth" |
"move_in"), ``departure`` (null | "death" | "move_out").
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synth import reference as ref
from synth.config import CityConfig
from synth.rng import stream

DAYS_PER_YEAR = 365.25

# The resident registration number's check digit (used for numbers issued before October 2020):
# weights over the first 12 digits, check = (11 - sum mod 11) mod 10.
RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
# From October 2020 the last six digits are random (Ministry of the Interior and Safety).
RRN_RANDOM_FROM = np.datetime64("2020-10-01")

# Movers between regions are mostly young adults and their children (KOSTAT internal migration
# statistics by age); relative weights by age, normalised so the population-wide rate is kept.
MOVER_AGE_WEIGHTS = ((0, 9, 1.2), (10, 19, 0.7), (20, 34, 2.4), (35, 44, 1.3), (45, 64, 0.7))
MOVER_WEIGHT_OLD = 0.4
# Share of residents whose old-style registration number carries a Gwangju / South Jeolla region
# code (born here); the rest were registered elsewhere. A modelling choice.
BORN_LOCAL = 0.7


def age_years(birth: np.ndarray, on: np.datetime64 | np.ndarray) -> np.ndarray:
    """Whole years of age on a date (vectorised over numpy datetime64[D] arrays)."""
    b_y = birth.astype("datetime64[Y]").astype(np.int64)
    o_y = np.asarray(on).astype("datetime64[Y]").astype(np.int64)
    b_md = birth - birth.astype("datetime64[Y]").astype("datetime64[D]")
    o_md = np.asarray(on) - np.asarray(on).astype("datetime64[Y]").astype("datetime64[D]")
    years: np.ndarray = (o_y - b_y - (o_md < b_md)).astype(np.int64)
    return years


def _age_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = ref.floats(ref.param("population_age_sex"), "male", "female")
    lo = t["age_lo"].cast(pl.Int64).to_numpy()
    hi = t["age_hi"].cast(pl.Int64).to_numpy()
    male = t["male"].to_numpy()
    female = t["female"].to_numpy()
    return lo, hi, male, female


def _sample_ages(
    rng: np.random.Generator, n: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ages in days and sexes ("M"/"F") from the published age-sex structure."""
    lo, hi, male, female = _age_table()
    total = male + female
    p = total * (weights if weights is not None else 1.0)
    group = rng.choice(len(lo), size=n, p=p / p.sum())
    is_male = rng.random(n) < (male / total)[group]
    span = (hi - lo + 1)[group].astype(np.float64)
    years = lo[group] + rng.random(n) * span
    # The open oldest group thins out quickly: an exponential tail instead of a flat band.
    oldest = hi[group] == hi.max()
    years[oldest] = lo[group][oldest] + np.minimum(rng.exponential(4.0, oldest.sum()), span[oldest])
    days = (years * DAYS_PER_YEAR).astype(np.int64)
    return days, np.where(is_male, "M", "F")


def _mover_weights(ages: np.ndarray) -> np.ndarray:
    w = np.full(ages.shape, MOVER_WEIGHT_OLD)
    for lo, hi, weight in MOVER_AGE_WEIGHTS:
        w[(ages >= lo) & (ages <= hi)] = weight
    return w


def _group_weights_for_movers() -> np.ndarray:
    lo, hi, _, _ = _age_table()
    mid = (lo + hi) // 2
    return _mover_weights(mid)


def rrn_numbers(
    rng: np.random.Generator, birth: np.ndarray, sex: np.ndarray, local: np.ndarray
) -> np.ndarray:
    """Resident registration numbers in their real form, ``YYMMDD-Gxxxxxx``.

    G is 1/2 for men/women born in the 1900s and 3/4 from 2000. Numbers issued before October 2020
    carry a 4-digit region code, a serial digit and the check digit; later ones six random digits.
    """
    n = len(birth)
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (birth - birth.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    male = sex == "M"
    g = np.where(year >= 2000, np.where(male, 3, 4), np.where(male, 1, 2))
    digits = np.zeros((n, 13), dtype=np.int64)
    yy = year % 100
    for i, v in enumerate((yy // 10, yy % 10, month // 10, month % 10, day // 10, day % 10, g)):
        digits[:, i] = v
    region = np.where(local, rng.integers(5500, 6700, n), rng.integers(0, 9600, n))
    for i, div in enumerate((1000, 100, 10, 1)):
        digits[:, 7 + i] = (region // div) % 10
    digits[:, 11] = rng.integers(0, 10, n)
    digits[:, 12] = (11 - (digits[:, :12] * np.array(RRN_WEIGHTS)).sum(axis=1) % 11) % 10
    new = birth >= RRN_RANDOM_FROM
    digits[new, 7:] = rng.integers(0, 10, (int(new.sum()), 6))
    # Lay the 13 digits out as bytes "YYMMDD-Gxxxxxx" and view each row as one string.
    text = np.full((n, 14), ord("-"), dtype=np.uint8)
    text[:, :6] = digits[:, :6] + ord("0")
    text[:, 7:] = digits[:, 6:] + ord("0")
    return text.view("S14").ravel().astype("U14")


def rrn_check_digit_ok(rrn: str) -> bool:
    """Whether an old-style number's check digit is right (always True from October 2020)."""
    d = [int(c) for c in rrn.replace("-", "")]
    return d[12] == (11 - sum(a * b for a, b in zip(d[:12], RRN_WEIGHTS, strict=True)) % 11) % 10


def _names(rng: np.random.Generator, sex: np.ndarray, birth: np.ndarray) -> np.ndarray:
    sur = ref.floats(ref.param("surnames"), "pct")
    surnames = sur["surname"].to_numpy()
    p = sur["pct"].to_numpy()
    family = surnames[rng.choice(len(surnames), size=len(sex), p=p / p.sum())]
    given = ref.param("given_names")
    old = birth < np.datetime64("1975-01-01")
    out = np.empty(len(sex), dtype=object)
    for s in ("M", "F"):
        for cohort, mask in (("old", old), ("new", ~old)):
            sel = (sex == s) & mask
            k = int(sel.sum())
            if not k:
                continue
            parts = []
            for pos in ("1", "2"):
                row = given.filter(
                    (pl.col("sex") == s)
                    & (pl.col("cohort") == cohort)
                    & (pl.col("position") == pos)
                )
                syllables = np.array(row["syllables"][0].split("|"), dtype=object)
                parts.append(syllables[rng.integers(0, len(syllables), k)])
            out[sel] = family[sel] + parts[0] + parts[1]
    return out


def _places(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """District, dong and road address below the dong for ``n`` residents."""
    districts = ref.floats(ref.param("districts"), "population_m")
    codes = districts["district_code"].to_numpy()
    p = districts["population_m"].to_numpy()
    district = codes[rng.choice(len(codes), size=n, p=p / p.sum())]
    dongs = ref.dongs()
    roads = dict(ref.param("roads").iter_rows())
    dong = np.empty(n, dtype="U7")
    road = np.empty(n, dtype="U16")
    # No published population per dong in the boundary data: residents spread evenly over the
    # dongs of their district.
    for code in codes:
        sel = np.flatnonzero(district == code)
        options = dongs.filter(pl.col("district_code") == code)["dong_code"].to_numpy()
        dong[sel] = options[rng.integers(0, len(options), len(sel))]
        names = np.array(roads[code].split("|"))
        road[sel] = names[rng.integers(0, len(names), len(sel))]
    number = (rng.pareto(1.2, n) * 20 + 1).astype(np.int64).clip(1, 400)
    apartment = rng.random(n) < 0.6  # about 60% of Korean homes are apartments (KOSTAT census)
    block = rng.integers(101, 116, n)
    unit = rng.integers(1, 25, n) * 100 + rng.integers(1, 5, n)
    district_names = districts.select("district_code", "name_ko")
    return (
        pl.DataFrame(
            {
                "district_code": district,
                "dong_code": dong,
                "road": road,
                "number": number,
                "apartment": apartment,
                "block": block,
                "unit": unit,
            }
        )
        .join(district_names, on="district_code", how="left", maintain_order="left")
        .select(
            "district_code",
            "dong_code",
            pl.format("광주광역시 {} {} {}", "name_ko", "road", "number")
            .add(
                pl.when("apartment")
                .then(pl.format(" {}동 {}호", "block", "unit"))
                .otherwise(pl.lit(""))
            )
            .alias("address"),
        )
    )


def _hazard_days(
    rng: np.random.Generator, annual_rate: np.ndarray, window_days: np.ndarray
) -> np.ndarray:
    """Days until an event with the given annual probability, or -1 if not within the window."""
    daily = -np.log1p(-np.clip(annual_rate, 0, 0.999)) / DAYS_PER_YEAR
    wait = rng.exponential(1.0, len(annual_rate)) / np.maximum(daily, 1e-12)
    return np.where(wait < window_days, wait.astype(np.int64), -1)


def _mortality(age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    t = ref.floats(ref.param("mortality"), "male", "female")
    rate = np.zeros(len(age))
    for row in t.iter_rows(named=True):
        sel = (age >= int(row["age_lo"])) & (age <= int(row["age_hi"]))
        rate[sel & (sex == "M")] = row["male"] / 1000
        rate[sel & (sex == "F")] = row["female"] / 1000
    return rate


def generate_people(cfg: CityConfig) -> pl.DataFrame:
    """Everyone resident at some point of the window, baseline residents first."""
    rng = stream(cfg.seed, "population")
    start = np.datetime64(cfg.start, "D")
    flows = dict(ref.floats(ref.param("demography"), "per_1000").iter_rows())

    # Residents on the first day.
    n = cfg.citizens
    age_days, sex = _sample_ages(rng, n)
    birth = start - age_days.astype("timedelta64[D]")
    arrival_day = np.zeros(n, dtype=np.int64)
    arrival = np.full(n, "baseline", dtype=object)

    # Born during the window: 105 boys per 100 girls (KOSTAT birth statistics).
    n_birth = int(rng.poisson(flows["birth"] / 1000 * n * cfg.years))
    b_day = np.sort(rng.integers(0, cfg.days, n_birth))
    b_sex = np.where(rng.random(n_birth) < 105 / 205, "M", "F")

    # Moving in during the window, with the age profile of movers.
    n_in = int(rng.poisson(flows["move_in"] / 1000 * n * cfg.years))
    in_age, in_sex = _sample_ages(rng, n_in, _group_weights_for_movers())
    in_day = np.sort(rng.integers(0, cfg.days, n_in))

    arrival_day = np.concatenate([arrival_day, b_day, in_day])
    first_day = start + arrival_day.astype("timedelta64[D]")
    birth = np.concatenate(
        [
            birth,
            first_day[n : n + n_birth],
            first_day[n + n_birth :] - in_age.astype("timedelta64[D]"),
        ]
    )
    sex = np.concatenate([sex, b_sex, in_sex])
    arrival = np.concatenate(
        [arrival, np.full(n_birth, "birth", dtype=object), np.full(n_in, "move_in", dtype=object)]
    )
    total = len(sex)

    # Leaving: death (age- and sex-specific) or moving out (mover age profile), whichever first.
    age_now = age_years(birth, first_day)
    window = cfg.days - arrival_day
    death = _hazard_days(rng, _mortality(age_now, sex), window)
    w = _mover_weights(age_now)
    move_rate = flows["move_out"] / 1000 * w / (w[:n].mean() if n else 1.0)
    move = _hazard_days(rng, move_rate, window)
    dies = (death >= 0) & ((move < 0) | (death <= move))
    moves = (move >= 0) & ~dies
    present_to = np.full(total, cfg.days, dtype=np.int64)
    present_to[dies] = arrival_day[dies] + death[dies] + 1  # present on the day of death
    present_to[moves] = arrival_day[moves] + np.maximum(move[moves], 1)
    departure = np.full(total, None, dtype=object)
    departure[dies] = "death"
    departure[moves] = "move_out"

    places = _places(rng, total)
    local = rng.random(total) < BORN_LOCAL
    rrn = rrn_numbers(rng, birth, sex, local)
    # Registration numbers are unique; redraw the rare collision from its own stream.
    retry = stream(cfg.seed, "population", "rrn-retry")
    while True:
        dup = np.flatnonzero(pl.Series(rrn).is_duplicated().to_numpy())
        if not len(dup):
            break
        rrn[dup] = rrn_numbers(retry, birth[dup], sex[dup], local[dup])
    names = _names(rng, sex, birth)
    aid = rng.random(total) < flows["medical_aid"] / 1000

    return pl.DataFrame(
        {
            "pid": np.arange(total, dtype=np.int32),
            "rrn": rrn,
            "name": names.astype(str),
            "sex": sex.astype(str),
            "birth_date": birth,
            "district_code": places["district_code"],
            "dong_code": places["dong_code"],
            "address": places["address"],
            "insurance": np.where(aid, "5", "4"),
            "present_from": first_day,
            "present_to": start + present_to.astype("timedelta64[D]"),
            "arrival": arrival.astype(str),
            "departure": pl.Series(list(departure), dtype=pl.Utf8),
        },
    ).with_columns(pl.col("birth_date", "present_from", "present_to").cast(pl.Date))
