"""``gjh``: the one command-line front door of the platform.

Subcommands are thin: they parse arguments, call the package that does the work and report.
``gjh synth`` generates a synthetic city; the pipeline, catalogue, serving and benchmark commands
join as their parts land.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gjh",
        description="Gwangju AI public medical service: data and AI platform.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser(
        "synth",
        help="generate a synthetic city, delivered the way the real feeds deliver",
        description=(
            "Generate a synthetic Gwangju: resident and institution registries, monthly HIRA "
            "claims and pharmacy extracts, DICOM uploads, seniors' centre device exports and "
            "citizen-app events. The same arguments give byte-identical output."
        ),
    )
    synth.add_argument(
        "--citizens", type=_positive, default=5000, help="residents on --start (default 5000)"
    )
    synth.add_argument(
        "--start",
        type=_date,
        default=date(2025, 1, 1),
        help="first day, YYYY-MM-DD (default 2025-01-01)",
    )
    synth.add_argument(
        "--days", type=_positive, default=365, help="length of the window in days (default 365)"
    )
    synth.add_argument("--seed", type=int, default=20250101, help="random seed (default 20250101)")
    synth.add_argument(
        "--out",
        type=Path,
        default=Path("data/sources"),
        help="output folder (default data/sources)",
    )
    synth.add_argument(
        "--inject-faults",
        action="store_true",
        help="add realistic bad input, listed in faults.json",
    )
    synth.add_argument(
        "--workers",
        type=_positive,
        default=min(2, os.cpu_count() or 1),
        help="worker processes; the output does not depend on it (default: up to 2)",
    )
    synth.set_defaults(func=_synth)
    return parser


def _synth(args: argparse.Namespace) -> int:
    from synth.city import generate
    from synth.config import CityConfig

    try:
        cfg = CityConfig(
            citizens=args.citizens,
            start=args.start,
            days=args.days,
            seed=args.seed,
            inject_faults=args.inject_faults,
            workers=args.workers,
        )
    except ValueError as exc:
        print(f"gjh synth: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    try:
        summary = generate(cfg, args.out, progress=lambda msg: print(f"  {msg}", flush=True))
    except FileExistsError as exc:
        print(f"gjh synth: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - began
    counts = summary.counts
    print(f"gjh synth: wrote {args.out} in {elapsed:.1f} s")
    print(f"  claims statements: {counts['claims_rows']['T200']:,}, pharmacy statements: "
          f"{counts['claims_rows']['PHARM_T200']:,}")  # fmt: skip
    faults = dict(counts.get("faults", {}))
    if cfg.inject_faults:
        print(f"  faults injected: {sum(faults.values()):,} ({args.out / 'faults.json'})")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    print(f"  stages: {stages}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gjh`` with ``argv`` (default: the process arguments); return the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
