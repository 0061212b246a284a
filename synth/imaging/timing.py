"""Hand-run timing of the imaging generator: ``python -m synth.imaging.timing [-n N] [-r R]``.

Renders and encodes N studies in one process, with exams mixed as the demo city mixes them, and
prints milliseconds per DICOM file overall and per exam, with the rendering share. It is a tool for
the people who report performance figures, not a test: timings depend on the machine, so no test
asserts them.

Every exam is rendered once before the clock starts, so per-process tables and caches (normal
quantiles, tooth sprites, encoded header elements) are warm, as they are after the first few
studies of a real city; the timed studies are all new, as in a city.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np

from synth.imaging.assemble import assemble
from synth.imaging.exams import exams
from synth.imaging.orders import ImagingOrder
from synth.imaging.render import render_exam

# Share of studies per exam in the demo city.
MIX: dict[str, float] = {
    "CXR_PA": 22,
    "ECG_12LEAD": 14,
    "GASTROSCOPY": 14,
    "DENTAL_PANO": 7,
    "DENTAL_IO": 7,
    "LSPINE_LAT": 7,
    "LSPINE_AP": 4,
    "COLONOSCOPY": 4,
    "MAMMO_SCREEN": 4,
    "CXR_AP": 3,
    "KNEE_AP": 2,
    "FUNDUS": 2,
    "BRAIN_MRA": 1.5,
    "BRAIN_DWI": 1,
    "BRAIN_CT": 1,
    "QA_PHANTOM": 2,
    "LEG_LENGTH": 1,
    "HAND_BONEAGE": 1,
    "PROSTATE_MR": 1,
    "CXR_LAT": 1,
}
SEED = 20240601
# A few institutions, so the timing covers several export habits (VR, charset, MONOCHROME1).
INSTITUTIONS = ("36100011", "36100028", "36100035", "36100042", "36100059", "36100066")


def orders(n: int, batch: int = 0) -> list[ImagingOrder]:
    """About ``n`` eligible orders in the demo mix, abnormal at each exam's stated rate, in
    accession order; every ``batch`` is a different set of patients and studies."""
    rng = np.random.default_rng((SEED, batch))
    total = sum(MIX.values())
    out: list[ImagingOrder] = []
    for code, weight in MIX.items():
        row = exams()[code]
        for k in range(max(1, round(n * weight / total))):
            sex = row.sex or ("F" if rng.random() < 0.5 else "M")
            age = int(rng.integers(row.age_min, row.age_max + 1))
            studied = datetime(2024, 6, 3, 9) + timedelta(minutes=int(rng.integers(0, 90_000)))
            born = date(studied.year - age - 1, 1 + k % 12, 1 + k % 27)
            out.append(
                ImagingOrder(
                    accession=f"T{len(out):07d}",
                    exam=code,
                    patient_id=f"{born:%y%m%d}-{1 if sex == 'M' else 2}{k:06d}",
                    patient_name="김민준",
                    sex=sex,
                    birth_date=born,
                    institution_code=INSTITUTIONS[k % len(INSTITUTIONS)],
                    institution_name="빛고을내과의원",
                    study_datetime=studied,
                    abnormal=row.service is not None and rng.random() < row.abnormal_rate,
                    visit_key=f"S{k:09d}",
                )
            )
    order = rng.permutation(len(out))  # exams interleaved, as in a city's accession order
    return [replace(out[k], accession=f"T{batch:02d}{i:06d}") for i, k in enumerate(order)]


def measure(n: int, repeat: int) -> None:
    """Time rendering alone and rendering plus encoding per order, and print the table.

    ``repeat`` passes each time a new batch of about ``n`` studies, and each exam keeps its
    fastest pass: on a shared machine the slower passes measure the neighbours.
    """
    for first in {o.exam: o for o in orders(len(MIX), repeat)}.values():  # warm the caches
        assemble(first, SEED)
    render_s: dict[str, float] = {}
    total_s: dict[str, float] = {}
    files: dict[str, int] = defaultdict(int)
    studies: dict[str, int] = defaultdict(int)
    for run in range(repeat):
        batch = orders(n, run)
        rendering: dict[str, float] = defaultdict(float)
        total: dict[str, float] = defaultdict(float)
        files.clear()
        studies.clear()
        for k, order in enumerate(batch):
            start = time.perf_counter()
            render_exam(order, np.random.default_rng((run, k)))
            rendered = time.perf_counter()
            assembled, _faults = assemble(order, SEED)
            done = time.perf_counter()
            rendering[order.exam] += rendered - start
            total[order.exam] += done - rendered
            files[order.exam] += len(assembled.objects)
            studies[order.exam] += 1
        for code, seconds in total.items():
            total_s[code] = min(total_s.get(code, seconds), seconds)
            render_s[code] = min(render_s.get(code, rendering[code]), rendering[code])
    lines = [f"{'exam':<14}{'studies':>8}{'files':>7}{'ms/file':>9}{'render':>8}{'ms/study':>10}"]
    for code in MIX:
        if studies[code]:
            lines.append(
                f"{code:<14}{studies[code]:>8}{files[code]:>7}"
                f"{1000 * total_s[code] / files[code]:>9.2f}"
                f"{1000 * render_s[code] / files[code]:>8.2f}"
                f"{1000 * total_s[code] / studies[code]:>10.1f}"
            )
    all_files = sum(files.values())
    lines.append(
        f"{'overall':<14}{sum(studies.values()):>8}{all_files:>7}"
        f"{1000 * sum(total_s.values()) / all_files:>9.2f}"
        f"{1000 * sum(render_s.values()) / all_files:>8.2f}"
    )
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="studies to time (default 400)")
    parser.add_argument("-r", "--repeat", type=int, default=3, help="passes (default 3)")
    args = parser.parse_args()
    measure(args.n, args.repeat)


if __name__ == "__main__":
    main()
