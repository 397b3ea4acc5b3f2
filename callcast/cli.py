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
    from callcast.demo.database import build_demo_database
    from callcast.settings import get_settings

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
    from callcast.demo.database import DemoShift, advance_one_day
    from callcast.settings import get_settings

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_reporting_errors(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
