"""The ``callcast`` command: seed the demo database, advance it, and run the flows from a terminal.

Failures print one or two lines (what failed, why, what to do); the traceback goes to
``<home>/logs/callcast.log``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path

from callcast.errors import CallcastError


def _log_file() -> Path:
    from callcast.settings import get_settings

    try:
        path = get_settings().home / "logs" / "callcast.log"
        path.parent.mkdir(parents=True, exist_ok=True)
    except Exception:  # settings themselves may be the problem
        path = Path("/tmp/callcast.log")
    return path


def run_reporting_errors(action: Callable[[], object]) -> int:
    """Run ``action``; turn failures into a short message on stderr and a traceback in the log file."""
    try:
        action()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log = _log_file()
        with open(log, "a") as handle:
            handle.write(traceback.format_exc() + "\n")
        cause = _user_error(exc)
        if cause is not None:
            print(f"error: {cause}", file=sys.stderr)
        else:
            from callcast.database import mask_secrets
            from callcast.settings import get_settings

            text = mask_secrets(f"{type(exc).__name__}: {exc}", get_settings().resolved_database_url())
            print(
                f"error: unexpected failure ({text.splitlines()[0] if text else type(exc).__name__}).",
                file=sys.stderr,
            )
        print(f"       details: {log}", file=sys.stderr)
        return 2
    return 0


def _user_error(exc: BaseException) -> CallcastError | None:
    """The first :class:`CallcastError` in the exception chain, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CallcastError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _cmd_seed(args: argparse.Namespace) -> None:
    from callcast.database import make_engine, masked_url
    from callcast.settings import get_settings
    from demo_company.database import build_demo_database

    settings = get_settings()
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    print(f"Building the demo database ({args.size}, seed {args.seed or settings.seed}) in {masked_url(url)}")
    counts = build_demo_database(
        engine,
        size=args.size,
        seed=args.seed or settings.seed,
        on_progress=lambda line: print("  " + line, flush=True),
    )
    engine.dispose()
    print("Done: " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))


def _cmd_next_day(args: argparse.Namespace) -> None:
    from callcast.database import make_engine
    from callcast.settings import get_settings
    from demo_company.database import DemoShift, advance_one_day

    engine = make_engine(get_settings().resolved_database_url())
    shift = None
    if args.shift_from:
        shift = DemoShift(
            start=args.shift_from,
            demand_factor=args.demand_factor,
            age_offset=args.age_offset,
            balance_factor=args.balance_factor,
            telephone_share=args.telephone_share,
        )
    for _ in range(args.days):
        added = advance_one_day(engine, shift)
        shift = None
        print(
            f"{added['day']}: +{added['sales']:,} sales, +{added['customers']} customers, "
            f"+{added['contacts']} contacts, {added['outcomes']} outcomes now known"
        )
    engine.dispose()


def _cmd_export(args: argparse.Namespace) -> None:
    from flows.export import daily_export

    if args.source_url:
        os.environ["CALLCAST_DATABASE_URL"] = args.source_url
    manifests = daily_export(partition_date=args.date, tables=args.tables, lake_url=args.lake)
    for m in manifests:
        print(
            f"{m['table']:<20} {m['rows']:>12,} rows  {m['mode']:<11}  raw/{m['table']}/dt={m['partition_date']}/"
        )


def _cmd_demo(args: argparse.Namespace) -> None:
    from callcast.database import make_engine
    from callcast.runtime import ensure_prefect_api
    from callcast.settings import get_settings
    from demo_company.database import build_demo_database

    settings = get_settings()
    url = settings.resolved_database_url()
    database_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if args.reseed or (database_file is not None and not database_file.exists()):
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        print(f"[1/6] Building the demo company database ({args.size}) ...", flush=True)
        engine = make_engine(url)
        build_demo_database(
            engine,
            size=args.size,
            seed=settings.seed,
            on_progress=lambda line: print("      " + line, flush=True),
        )
        engine.dispose()
    else:
        print("[1/6] Demo database already there (use --reseed to rebuild it)", flush=True)
    print("[2/6] Starting a local Prefect API (runs stay visible in `make server`) ...", flush=True)
    ensure_prefect_api()
    from flows.pipeline import daily_pipeline

    print("[3-6] export -> checks -> train + promotion gate -> call list -> forecasts", flush=True)
    summary = daily_pipeline(partition_date=args.date, profile=args.profile, capacity=args.capacity)
    print(render_demo_summary(summary, settings))


def render_demo_summary(summary: dict, settings) -> str:
    """The few lines a person reads at the end of `make demo`."""
    lake = settings.resolved_lake_url()
    day = summary["partition_date"]
    lines = ["", "=" * 78, f"callcast demo — partition {day}", "=" * 78]
    exported = ", ".join(f"{t} {v['rows']:,}" for t, v in summary["export"].items())
    lines += [f"Export     {lake}/raw/<table>/dt={day}/   ({exported} rows)"]
    checks = ", ".join(f"{t}: {s}" for t, s in summary["checks"].items())
    lines += [f"Checks     {lake}/checks/<table>/dt={day}/result.json   ({checks})"]
    model = summary.get("model")
    if model:
        h = model["headline"]
        verdict = "promoted to champion" if model["promoted"] else "kept as challenger"
        lines += [
            f"Model      propensity {model['version']} ({model.get('candidate', '')}) {verdict}",
            f"           holdout ROC AUC {h['roc_auc']:.3f}; top 20% of calls reach {h['gains_at_20']:.0%} of buyers; "
            f"Brier {h['brier']:.4f} vs base rate {h['base_rate_brier']:.4f}",
            f"           card: {model.get('registry', lake + '/registry/propensity')}",
        ]
    call_list = summary.get("call_list")
    if call_list:
        lines += [
            f"Call list  {call_list['path']}   ({call_list['rows']:,} customers, model "
            f"{call_list['model_version']})",
            f"           expected sales {call_list['expected_sales']:.1f} vs {call_list['random_expected']:.1f} "
            "calling the same number at random",
        ]
        for row in call_list.get("head", [])[:5]:
            lines.append(
                f"           #{row['rank']:<4} {row['name']:<32} p={float(row['probability']):.3f}  "
                f"{row['reasons']}"
            )
    forecast = summary.get("forecast")
    if forecast:
        lines += [
            f"Forecasts  {forecast['location']}   ({forecast['n_series']} series, {forecast['horizon']} days ahead)",
            f"           backtest WMAE {forecast['wmae']:.3f} vs seasonal naive {forecast['naive_wmae']:.3f} "
            f"({forecast['wmae_improvement']:.1%} better)",
        ]
    lines += [
        "Prefect UI `make server` then http://127.0.0.1:4200 (runs, artifacts); MLflow: "
        f"{settings.resolved_mlflow_uri()}",
        "=" * 78,
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcast", description="callcast: batch ML for phone sales.")
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser("seed", help="(re)build the demo operational database")
    seed.add_argument(
        "--size", default="demo", help="tiny | small | demo | large | xlarge (sales history size)"
    )
    seed.add_argument("--seed", type=int, default=None, help="random seed (default CALLCAST_SEED)")
    seed.set_defaults(handler=_cmd_seed)

    next_day = commands.add_parser("next-day", help="append the next business day to the demo database")
    next_day.add_argument("--days", type=int, default=1)
    next_day.add_argument(
        "--shift-from", type=date.fromisoformat, help="inject a distribution shift from this day"
    )
    next_day.add_argument("--demand-factor", type=float, default=1.0)
    next_day.add_argument("--age-offset", type=int, default=0)
    next_day.add_argument("--balance-factor", type=float, default=1.0)
    next_day.add_argument("--telephone-share", type=float, default=None)
    next_day.set_defaults(handler=_cmd_next_day)

    export = commands.add_parser("export", help="run the daily export flow")
    export.add_argument("--date", type=date.fromisoformat, help="partition date (default: today, UTC)")
    export.add_argument("--tables", nargs="+")
    export.add_argument(
        "--source-url", help="database URL (default: CALLCAST_DATABASE_URL or the embedded SQLite)"
    )
    export.add_argument("--lake", help="lake directory or az://container/prefix")
    export.set_defaults(handler=_cmd_export)

    demo = commands.add_parser("demo", help="seed if needed, then run the whole daily pipeline and summarise")
    demo.add_argument("--reseed", action="store_true", help="rebuild the demo database first")
    demo.add_argument("--size", default="demo", help="demo database size when (re)seeding")
    demo.add_argument("--profile", default="quick", choices=["quick", "full"], help="model search profile")
    demo.add_argument("--capacity", type=int, default=None, help="calls the team can make (list length)")
    demo.add_argument("--date", type=date.fromisoformat, default=None, help="partition date (default: today)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in (
        "httpx",
        "httpcore",
        "urllib3",
        "alembic",
        "azure",
        "great_expectations",
        "distributed",
        "mlflow",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return run_reporting_errors(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
