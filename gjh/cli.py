"""``gjh``: the one command-line front door of the platform.

Subcommands are thin: they parse arguments, call the package that does the work and report.
``gjh synth`` generates a synthetic city, ``gjh keys`` creates the demo's secrets, ``gjh build``
runs every pipeline, ``gjh intake`` takes in a DICOM drop, ``gjh catalog`` lists the tables,
``gjh dq`` runs the OHDSI data-quality checks over the OMOP tables, ``gjh serve`` starts the
servers and ``gjh bench`` benchmarks the whole platform.
Heavy imports happen inside each command, so ``gjh --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
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


def _intake_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    intake = sub.add_parser(
        "intake",
        help="take in a DICOM drop in one process: index it and check its tables",
        description=(
            "Index every new DICOM file under <drop>/imaging into LAKEHOUSE_URI (originals "
            "stored encrypted, duplicates and bad files quarantined, series and studies "
            "rebuilt) and evaluate the data-quality checks of the imaging tables, as one run "
            "recorded in DAGSTER_HOME (default data/dagster). Exit status 1 when the run fails "
            "(a fatal check included), else 0."
        ),
    )
    intake.add_argument(
        "drop",
        type=Path,
        nargs="?",
        default=None,
        help="the drop folder (default: GJH_SOURCES or data/sources)",
    )
    intake.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="files modified less than this many seconds ago wait for the next intake (default 10)",
    )
    intake.add_argument(
        "--workers", type=int, default=0, help="header-reading processes (default: one per CPU)"
    )
    intake.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    intake.set_defaults(func=_intake)


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 (one statement per subcommand)
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
        "--history-from",
        type=_date,
        default=None,
        help="first day of the claims and pharmacy history of citizens who link their records "
        "in the app, YYYY-MM-DD, before --start (default: no history)",
    )
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

    keys = sub.add_parser(
        "keys",
        help="create the pseudonymisation, identity and object-store keys if missing (demo and "
        "tests)",
        description=(
            "Create random keys in GJH_SECRETS_DIR (default ./secrets, git-ignored): the HMAC key "
            "that turns registration numbers into citizen keys, the Fernet key of the identity "
            "vault and the AES key of the DICOM object store. Existing keys are kept. Production "
            "sets GJH_PSEUDONYM_KEY, GJH_IDENTITY_KEY and GJH_OBJECT_KEY from its secret store "
            "instead."
        ),
    )
    keys.set_defaults(func=_keys)

    build = sub.add_parser(
        "build",
        help="run every pipeline into the lakehouse, without the UI",
        description=(
            "Materialise every asset (bronze, silver, gold, with their checks) from the "
            "deliveries in --sources into LAKEHOUSE_URI, with the Definitions the UI uses. Runs "
            "are recorded in DAGSTER_HOME (default data/dagster). DICOM studies that received "
            "files within the quiet period are not routed yet: the build says how many and from "
            "when they will be."
        ),
    )
    build.add_argument(
        "--sources",
        type=Path,
        default=None,
        help="the drop folder (default: GJH_SOURCES or data/sources)",
    )
    build.set_defaults(func=_build)

    _intake_parser(sub)

    catalog = sub.add_parser(
        "catalog",
        help="list every table with its rows, version and last update",
        description="Every table of the catalogue in LAKEHOUSE_URI: rows, version, last update.",
    )
    catalog.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"table", "uri", "rows", "version", "updated"}',
    )
    catalog.add_argument(
        "--docs",
        action="store_true",
        help="regenerate DATA_QUALITY.md (every table's checks) from the catalogue",
    )
    catalog.set_defaults(func=_catalog)

    dq = sub.add_parser(
        "dq",
        help="run the OHDSI data-quality checks over the OMOP tables now and report",
        description=(
            "Run every check type of OHDSI's Data Quality Dashboard over the omop tables in "
            "LAKEHOUSE_URI, record the run in gold.omop_dq_results, and print checks run, passed, "
            "failed and not applicable per Kahn category and level, then each failed check with "
            "its failing rows and why the failure is expected (when it is). Exit status 1 when a "
            "fatal check fails, else 0."
        ),
    )
    dq.set_defaults(func=_dq)
    partner = sub.add_parser(
        "partner",
        help="hospital partners' OMOP extracts: linkage tokens, the count check",
        description="Tools for hospital partners' OMOP extracts (docs/partners.md).",
    )
    partner_sub = partner.add_subparsers(dest="partner_command", required=True)
    tokens = partner_sub.add_parser(
        "tokens",
        help="registration numbers on stdin -> linkage tokens on stdout",
        description=(
            "Read registration numbers (one per line, or a CSV with a header naming number and "
            "optionally person_id) from stdin and write their linkage tokens (HMAC-SHA-256 under "
            "the linkage key, lowercase hex) as CSV: person_id,token when person_id is given. A "
            "malformed number stops the run with its line number (never the number) and no "
            "output."
        ),
    )
    tokens.add_argument("--key", type=Path, required=True, help="the linkage key file (hex)")
    tokens.set_defaults(func=_partner_tokens)
    partner_report = partner_sub.add_parser(
        "report",
        help="the count check of every partner delivery, per table",
        description=(
            "Per partner delivery and table: rows delivered, accepted, quarantined and linked, "
            "persons linked and unlinked (silver.partner_counts). Exit status 1 when a file's "
            "rows do not reconcile (delivered = accepted + quarantined)."
        ),
    )
    partner_report.add_argument("--partner", help="only this partner (its code, e.g. cnuh)")
    partner_report.set_defaults(func=_partner_report)

    serve = sub.add_parser(
        "serve",
        help="start every app and the Dagster UI and print their URLs",
        description=(
            "Start the servers in the foreground and keep them alive (a server that exits or "
            "stops answering is restarted); Ctrl-C stops them all. Default ports: citizen "
            "8501, clinician 8502, public_health 8503, admin 8504, Dagster UI 3000."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--dagster-port", type=_positive, default=3000, help="Dagster UI port (default 3000)"
    )
    serve.add_argument(
        "--app",
        choices=["citizen", "clinician", "public_health", "admin", "dagster"],
        help="start only this one",
    )
    serve.add_argument("--port", type=_positive, help="its port (with --app)")
    serve.add_argument(
        "--unresponsive",
        type=_positive,
        default=30,
        metavar="SECONDS",
        help="restart a server whose health check has not answered for this long (default 30)",
    )
    serve.set_defaults(func=_serve)

    accounts = sub.add_parser(
        "accounts",
        help="manage the embedded local accounts (argon2id password hashes)",
        description=(
            "Load a synthetic city's demo accounts (citizens' registration numbers become "
            "citizen keys; passwords become argon2id hashes), list the accounts, or print the "
            "demo sign-ins."
        ),
    )
    accounts.add_argument("action", choices=["load-demo", "list", "demo"], help="what to do")
    accounts.add_argument(
        "--sources", type=Path, default=None, help="the city (default: GJH_SOURCES)"
    )
    accounts.set_defaults(func=_accounts)

    bench = sub.add_parser(
        "bench",
        help="benchmark the whole platform on a synthetic city and write the report",
        description=(
            "Generate (or reuse) a synthetic city, run every stage (synth, claims bronze and "
            "silver, DICOM header indexing, DICOM intake against Orthanc, AI scoring, the "
            "whole build with gold and OMOP, the timeline query), each beside its bare-library "
            "floor measured in the same run; write latest.json, a dated copy and latest.md, and "
            "print the table. With --sizes, run "
            "each size and draw the growth of each stage's time and memory (docs/performance.md)."
        ),
    )
    bench.add_argument(
        "--size",
        default="quick",
        help="quick (2,000 citizens, 31 days), city (1.43 M citizens, a year) or a number of "
        "citizens (default quick)",
    )
    bench.add_argument(
        "--sizes", default=None, help="comma-separated sizes for the growth curves (e.g. 2000,5000)"
    )
    bench.add_argument(
        "--stages",
        default=None,
        help="comma-separated stages to run (default all): claims, headers, intake, scoring, "
        "build, newday (brings build), demo, queries, crowd",
    )
    bench.add_argument(
        "--days", type=_positive, default=None, help="days of the city (default: by size)"
    )
    bench.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="report folder (bench-results)"
    )
    bench.add_argument(
        "--cache",
        type=Path,
        default=Path("data/bench"),
        help="where generated cities are kept between runs (default data/bench)",
    )
    bench.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's folder in the cache (the built lake, its Dagster home, the "
        "held-back day) instead of deleting it",
    )
    bench.add_argument(
        "--docs",
        type=Path,
        default=Path("docs/performance"),
        help="where --sizes writes growth.png and growth.md (default docs/performance)",
    )
    bench.set_defaults(func=_bench)
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
            history_from=args.history_from,
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


def _keys(args: argparse.Namespace) -> int:
    from lakehouse import dicom_store, identity, linkage, pseudonym

    for what, path in (
        ("pseudonymisation key", pseudonym.create_key()),
        ("identity vault key", identity.create_key()),
        ("DICOM object-store key", dicom_store.create_key()),
        ("partner linkage key", linkage.create_key()),
    ):
        print(f"  {what}: {path}")
    return 0


def _drop_folder(command: str, given: Path | None, inside: str = "") -> Path | None:
    """The drop folder (``given``, else GJH_SOURCES or data/sources; set for the pipelines)
    when it holds ``inside`` and the pseudonymisation key is there; else None, having said
    which is missing."""
    if given is not None:
        os.environ["GJH_SOURCES"] = str(given)
    from lakehouse.config import MissingKeyError, sources_dir
    from lakehouse.pseudonym import check_key

    sources = sources_dir()
    if not (sources / inside).is_dir():
        what = f"{inside} folder in" if inside else "drop folder at"
        print(f"gjh {command}: no {what} {sources}", file=sys.stderr)
        return None
    try:
        check_key()
    except MissingKeyError as exc:
        print(f"gjh {command}: {exc}", file=sys.stderr)
        return None
    return sources


def _build(args: argparse.Namespace) -> int:
    from lakehouse.config import lakehouse_uri
    from pipelines.build import BuildError, build
    from pipelines.instance import instance

    sources = _drop_folder("build", args.sources)
    if sources is None:
        return 2
    print(f"gjh build: {sources} -> {lakehouse_uri()}", flush=True)
    began = time.perf_counter()
    try:
        results = build(sources, instance(), lambda line: print(line, flush=True))
    except BuildError as exc:
        print(f"gjh build: {exc}", file=sys.stderr)
        return 1
    failed = [c for r in results for c in r.checks_failed]
    print(f"gjh build: done in {time.perf_counter() - began:.1f} s")
    if failed:
        print(f"  data-quality warnings: {', '.join(failed)} (see the Dagster UI)")
    return 0


def _intake(args: argparse.Namespace) -> int:
    from pipelines.intake import intake  # imports Dagster only once its header workers started

    drop = _drop_folder("intake", args.drop, "imaging")
    if drop is None:
        return 2
    began = time.perf_counter()
    done = intake(drop, None, args.settle, args.workers)
    if args.json:
        print(json.dumps(done.summary() | {"seconds": time.perf_counter() - began}))
    else:
        counts = done.counts
        print(
            f"gjh intake: {done.drop_id}: {counts.get('files', 0):,} files = "
            f"{counts.get('instances', 0):,} instances indexed + "
            f"{counts.get('quarantined', 0):,} quarantined; {counts.get('series', 0):,} series, "
            f"{counts.get('studies', 0):,} studies rebuilt; {len(done.checks)} checks, "
            f"{len(done.checks_failed)} failed ({time.perf_counter() - began:.1f} s, run "
            f"{done.run_id})"
        )
        for name in done.checks_failed:
            print(f"  check failed: {name}")
    for error in done.errors:
        print(f"gjh intake: {error[:2000]}", file=sys.stderr)
    return 0 if done.success else 1


def _catalog(args: argparse.Namespace) -> int:
    from lakehouse import delta
    from lakehouse.catalog import TABLES

    if args.docs:
        from lakehouse.quality import render_markdown

        target = Path(__file__).resolve().parents[1] / "DATA_QUALITY.md"
        target.write_text(render_markdown(), encoding="utf-8")
        print(f"gjh catalog: wrote {target}")
        return 0
    states = [delta.state(name) for name in TABLES]
    if args.json:
        doc = [
            {
                "table": s.table,
                "uri": s.uri,
                "rows": s.rows,
                "version": s.version,
                "updated": s.updated.isoformat() if s.updated else None,
            }
            for s in states
        ]
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return 0
    width = max(len(s.table) for s in states)
    print(f"{'table':<{width}}  {'rows':>12}  {'version':>7}  updated (UTC)")
    for s in states:
        if s.version is None:
            print(f"{s.table:<{width}}  {'-':>12}  {'-':>7}  not built")
        else:
            when = s.updated.strftime("%Y-%m-%d %H:%M:%S") if s.updated else "-"
            print(f"{s.table:<{width}}  {s.rows or 0:>12,}  {s.version:>7}  {when}")
    if any(s.table == "silver.partner_counts" and s.version is not None for s in states):
        print("\npartner deliveries, the count check (gjh partner report):")
        _partner_report(argparse.Namespace(partner=None))
    return 0


def _dq(args: argparse.Namespace) -> int:
    del args
    import polars as pl

    from apps.common.i18n import t
    from lakehouse.omop import dq

    rows, written = dq.run()
    print(f"gjh dq: {rows.height} checks over the omop tables, recorded in {written.table}")
    print(f"  {'category':<13} {'level':<8} {'run':>5} {'passed':>7} {'failed':>7} {'n/a':>5}")
    for c in dq.summary(rows).iter_rows(named=True):
        print(f"  {c['category']:<13} {c['level']:<8} {c['run']:>5} {c['passed']:>7} "
              f"{c['failed']:>7} {c['not_applicable']:>5}")  # fmt: skip
    failed = rows.filter(pl.col("passed").not_()).sort(
        pl.col("severity") != "fatal", "check_id"
    )  # fmt: skip
    print(f"failed checks: {failed.height}")
    for f in failed.iter_rows(named=True):
        why = t(f"dq.explanation.{f['explanation']}", "en") if f["explanation"] else "unexpected"
        print(f"  {f['check_id']} ({f['severity']}): {f['rows_failing']:,} of "
              f"{f['rows_checked']:,} failing ({f['pct_failing']:.2f} % > "
              f"{f['threshold_pct']:g} %): {why}")  # fmt: skip
    fatal = failed.filter(pl.col("severity") == "fatal").height
    return 1 if fatal else 0


def _partner_tokens(args: argparse.Namespace) -> int:
    from lakehouse.config import MissingKeyError
    from lakehouse.linkage import MalformedNumberError, linkage_csv, read_key

    try:
        key = read_key(args.key)
        out = linkage_csv(sys.stdin.read(), key)
    except (MissingKeyError, MalformedNumberError) as exc:
        print(f"gjh partner tokens: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(out)
    return 0


def _partner_report(args: argparse.Namespace) -> int:
    import polars as pl

    from lakehouse import read as lake
    from pipelines.transform.partners import report

    rows = report(lake.frame("silver.partner_counts"), args.partner)
    if rows.is_empty():
        print("gjh partner report: no partner deliveries ingested")
        return 0
    delivery = None
    for r in rows.iter_rows(named=True):
        if (r["partner"], r["delivery_id"]) != delivery:
            delivery = (r["partner"], r["delivery_id"])
            print(f"{r['partner']} {r['delivery_id']} ({r['holder'] or '-'})")
            print(f"  {'table':<22} {'status':<9} {'delivered':>9} {'accepted':>9} "
                  f"{'quarant.':>9} {'linked':>9} {'persons linked/unlinked':>24}")  # fmt: skip
        persons = f"{r['persons_linked']}/{r['persons_unlinked']}"
        mark = "" if r["reconciles"] else "  DOES NOT RECONCILE"
        print(f"  {r['table']:<22} {r['status']:<9} {r['delivered']:>9,} {r['accepted']:>9,} "
              f"{r['quarantined']:>9,} {r['linked']:>9,} {persons:>24}{mark}")  # fmt: skip
    bad = rows.filter(~pl.col("reconciles")).height
    print(f"{rows.height} files: " + (f"{bad} do not reconcile" if bad else "all reconcile"))
    return 1 if bad else 0


def _serve(args: argparse.Namespace) -> int:
    from gjh.serve import APPS, Service, app, dagster_ui, serve
    from pipelines.instance import dagster_home, instance

    dagster_home()
    if args.port and not args.app:
        print("gjh serve: --port needs --app", file=sys.stderr)
        return 2
    services: list[Service] = []
    if args.app in (None, "dagster"):
        # The instance's storage is made here, once: the webserver, the daemon and their code
        # servers making a new SQLite storage at once were seen to leave it with two Alembic
        # heads, and the code servers then failed to load the definitions.
        instance().dispose()
        services.extend(dagster_ui(args.host, args.port or args.dagster_port))
    for name, port in APPS.items():
        if args.app in (None, name):
            services.append(app(name, args.host, args.port or port))
    print("gjh serve:")
    return serve(services, unresponsive_s=args.unresponsive)


def _accounts(args: argparse.Namespace) -> int:
    from lakehouse import accounts
    from lakehouse.config import sources_dir

    demo = (args.sources or sources_dir()) / "demo_accounts.json"
    if args.action == "load-demo":
        if not demo.exists():
            print(
                f"gjh accounts: no {demo}: regenerate the city with this version of gjh synth",
                file=sys.stderr,
            )
            return 2
        count = accounts.load_demo(demo)
        print(f"gjh accounts: {count} demo accounts in {accounts.path()}")
        return 0
    if args.action == "list":
        for a in accounts.load().values():
            print(f"  {a.name:<20} {a.role:<10} {a.institution or ''}")
        return 0
    doc = json.loads(demo.read_text(encoding="utf-8"))
    print("Demo sign-ins (synthetic people; not real):")
    for entry in doc["accounts"]:
        print(f"  {entry['role']:<10} {entry['username']:<20} {entry['password']:<18} "
              f"{entry.get('who', '')}")  # fmt: skip
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gjh.bench import report
    from gjh.bench.run import chosen, grow, run, size

    only = args.stages.split(",") if args.stages else None
    try:
        sizes = [size(s, args.days) for s in (args.sizes or args.size).split(",")]
        chosen(only)
    except ValueError as exc:
        print(f"gjh bench: {exc}", file=sys.stderr)
        return 2
    if args.sizes:
        docs = grow(sizes, args.out, args.cache, args.docs, only=only)
        print(f"gjh bench: growth over {len(docs)} sizes in {args.docs}")
    else:
        docs = [run(sizes[0], args.out, args.cache, only=only, keep=args.keep)]
    print(report.markdown(docs[-1]), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gjh`` with ``argv`` (default: the process arguments); return the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
