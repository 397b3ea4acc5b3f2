"""The ``callcast`` command: one entry point for every flow and operation.

``callcast <command> --help`` answers without importing Prefect, pandas or the models: each command imports
what it needs only when it runs. Failures print one or two lines (what failed, why, what to do) and the path
of the log file that holds the traceback; third-party loggers stay quiet unless ``--verbose``.
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
from typing import Any

from callcast.errors import CallcastError

VERBOSE = False  # set by configure_logging (the --verbose flag)
QUIET_LOGGERS = (
    "httpx",
    "httpcore",
    "urllib3",
    "alembic",
    "azure",
    "great_expectations",
    "distributed",
    "mlflow",
    "prefect",
    "numexpr",
    "matplotlib",
    "asyncio",
)


# -- errors and logging ---------------------------------------------------------------------------------


def log_file() -> Path:
    """``<home>/logs/callcast.log`` (or a temporary file when the settings themselves are broken)."""
    from callcast.settings import get_settings

    try:
        path = get_settings().home / "logs" / "callcast.log"
        path.parent.mkdir(parents=True, exist_ok=True)
    except Exception:
        path = Path("/tmp/callcast.log")
    return path


def user_error(exc: BaseException | None) -> CallcastError | None:
    """The first :class:`CallcastError` in the exception chain, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CallcastError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def run_reporting_errors(action: Callable[[], int | None]) -> int:
    """Run ``action``; a failure becomes a short message on stderr and a traceback in the log file."""
    try:
        return int(action() or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`callcast settings | head`): nothing left to tell
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        log = log_file()
        with open(log, "a") as handle:
            handle.write(traceback.format_exc() + "\n")
        cause = user_error(exc)
        if cause is not None:
            print(f"error: {cause}", file=sys.stderr)
        else:
            from callcast.database import mask_secrets
            from callcast.settings import get_settings

            text = mask_secrets(f"{type(exc).__name__}: {exc}", get_settings().resolved_database_url())
            first = text.splitlines()[0] if text else type(exc).__name__
            print(f"error: unexpected failure ({first}).", file=sys.stderr)
        print(f"       details: {log}", file=sys.stderr)
        return 2


class EngineChatter(logging.Filter):
    """Drops Prefect's own INFO lines ("Finished in state Completed()", "Beginning flow run …") from the
    terminal; our flows' and tasks' lines (progress, prints) pass. The UI keeps every line."""

    PREFECT_CODE = f"{os.sep}site-packages{os.sep}prefect{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect"):
            return True
        if record.levelno >= logging.ERROR and record.exc_info and self.PREFECT_CODE in record.pathname:
            return False  # the engine's traceback of a failure the command reports in one line (and logs)
        if record.levelno >= logging.WARNING:
            return True
        return record.funcName == "print_as_log" or self.PREFECT_CODE not in record.pathname


def quiet_terminal(verbose: bool) -> None:
    """Attach :class:`EngineChatter` to the terminal handlers (again after Prefect configured its logging)."""
    if verbose:
        return
    loggers = [logging.getLogger()] + [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("prefect") and isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            terminal = isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            )
            if terminal and not any(isinstance(f, EngineChatter) for f in handler.filters):
                handler.addFilter(EngineChatter())


def configure_logging(verbose: bool) -> None:
    """Our own lines at INFO in the terminal; library chatter only with ``--verbose``."""
    global VERBOSE
    VERBOSE = verbose
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    quiet_terminal(verbose)


def iso_date(text: str) -> date:
    """argparse type: a calendar date written YYYY-MM-DD (a mistyped one gets a clear message)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def csv_list(text: str | None) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else []


def with_prefect_api() -> None:
    """Runs go to the one local Prefect server (started if needed), never one temporary server per flow."""
    from deployments.server import ensure_local_server

    ensure_local_server(echo=lambda line: print(line, file=sys.stderr, flush=True))
    import prefect  # noqa: F401 - configures Prefect's logging now, so the filter below stays in place

    quiet_terminal(VERBOSE)


# -- commands -------------------------------------------------------------------------------------------


def cmd_seed(args: argparse.Namespace) -> None:
    from callcast.database import make_engine, masked_url
    from callcast.settings import get_settings
    from demo_company.database import build_demo_database

    settings = get_settings()
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else settings.seed
    engine = make_engine(url)
    print(f"Building the demo database ({args.size}, seed {seed}) in {masked_url(url)}")
    try:
        counts = build_demo_database(
            engine, size=args.size, seed=seed, on_progress=lambda line: print("  " + line, flush=True)
        )
    finally:
        engine.dispose()
    print("Done: " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))


def cmd_next_day(args: argparse.Namespace) -> None:
    from callcast.database import make_engine
    from callcast.lake import open_lake
    from callcast.settings import get_settings
    from demo_company.database import DemoShift, advance_one_day
    from tasks.monitoring import latest_call_list_ids

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url())
    shift = None
    if args.shift_from:
        shift = DemoShift(
            start=args.shift_from,
            demand_factor=args.demand_factor,
            age_offset=args.age_offset,
            balance_factor=args.balance_factor,
            telephone_share=args.telephone_share,
            existing_share=args.existing_share,
            truth_change=args.truth_change,
        )
    # The closed loop: the phone team works through the latest call list (random calls before the first one).
    listed = None if args.random_calls else latest_call_list_ids(open_lake(settings))
    calls = args.calls or settings.scoring.capacity
    try:
        for _ in range(args.days):
            added = advance_one_day(engine, shift, listed, calls, args.control_share)
            shift = None
            c = added["calls"]
            if listed is None:
                made = f"+{added['contacts']} random contacts (no call list yet)"
            elif not c["business_day"]:
                made = "no calls (weekend or holiday)"
            else:
                made = f"+{c['listed']} calls from the list, +{c['control']} random control calls"
            print(
                f"{added['day']}: +{added['sales']:,} sales, +{added['customers']} customers, {made}, "
                f"{added['outcomes']} outcomes now known"
            )
    finally:
        engine.dispose()


def refuse_future(day: date | None, what: str) -> None:
    """A mistyped future --date fails at once, before any server or flow starts."""
    if day is not None:
        from callcast.runtime import company_today
        from tasks.export import refuse_future_date

        refuse_future_date(day, company_today(), what)


def cmd_export(args: argparse.Namespace) -> None:
    from callcast import catalog

    refuse_future(args.date, "export")
    with_prefect_api()
    from flows.export import daily_export

    manifests = daily_export(partition_date=args.date, tables=args.tables, lake_url=args.lake)
    for m in manifests:
        where = catalog.partition(catalog.raw(m["table"]), date.fromisoformat(m["partition_date"]))
        print(f"{m['table']:<20} {m['rows']:>12,} rows  {m['mode']:<11}  {where}/")


def cmd_validate(args: argparse.Namespace) -> int:
    refuse_future(args.date, "validate")
    with_prefect_api()
    from flows.validate import validate_exports

    statuses = validate_exports(partition_date=args.date, tables=args.tables, lake_url=args.lake)
    for table, status in statuses.items():
        print(f"{table:<20} {status}")
    return 1 if "failed" in statuses.values() else 0


def cmd_train(args: argparse.Namespace) -> None:
    with_prefect_api()
    from flows.train_propensity import train_propensity

    train_propensity(profile=args.profile, as_of=args.as_of, lake_url=args.lake, use_dask=args.dask)


def cmd_score(args: argparse.Namespace) -> None:
    with_prefect_api()
    from flows.score import score_call_list

    summary = score_call_list(
        partition_date=args.date,
        capacity=args.capacity,
        use_dask=args.dask,
        call_date=args.call_date,
        cooloff_days=args.cooloff_days,
        allow_stale=args.allow_stale,
        force=args.force,
        lake_url=args.lake,
    )
    for row in summary.get("head", [])[:10]:
        print(f"#{row['rank']:<4} {row['name']:<32} p={float(row['probability']):.3f}  {row['reasons']}")
    print(summary["headline"])
    print(f"workbook: {summary['delivered_to'] or summary['workbook']}")


def cmd_monitor(args: argparse.Namespace) -> int:
    with_prefect_api()
    from flows.monitor import monitor_propensity

    result = monitor_propensity(partition_date=args.date, lake_url=args.lake)
    document = result["document"]
    for feature in sorted(document["features"], key=lambda f: -f["psi"])[:5]:
        print(
            f"  {feature['name']:<20} PSI {feature['psi']:.3f}  {feature['test']} p={feature['p_value']:.2g}  {feature['level']}"
        )
    print(f"drift event emitted: {'yes' if result['event_emitted'] else 'no'}")
    return 0


def cmd_analytics(args: argparse.Namespace) -> None:
    with_prefect_api()
    from flows.analytics import analytics

    results = analytics(analysis=args.name, as_of=args.date, lake_url=args.lake)
    for name, summary in results.items():
        print(f"{name:<13} report: {summary['report']}")


def cmd_forecast(args: argparse.Namespace) -> None:
    if args.csv and not args.id_cols:
        raise CallcastError("--id-cols is required with --csv (the columns that name a series).")
    with_prefect_api()
    from flows.forecast import forecast_sales

    summary = forecast_sales(
        csv_path=args.csv,
        id_cols=csv_list(args.id_cols),
        date_col=args.date_col,
        value_col=args.value_col,
        regressors=csv_list(args.regressors),
        holiday_col=args.holiday_col,
        freq=args.freq,
        horizon=args.horizon,
        partition_date=args.partition_date,
        dask_address=args.dask_address,
        dask_workers=args.dask_workers,
        mlflow_tracking_uri=args.mlflow_uri,
        folds=args.folds,
        candidates=csv_list(args.candidates) or None,
        namespace=args.namespace,
    )
    print(
        f"{summary['n_series']} series forecast {summary['horizon']} periods ahead -> {summary['location']}\n"
        f"backtest WMAE {summary['wmae']:.3f} = {summary['wmae_ratio']:.3f}x seasonal naive "
        f"({summary['naive_wmae']:.3f}); {summary['share_beating_naive']:.0%} of series beat it; "
        f"median MASE {summary['median_mase']:.3f} (naive {summary['naive_median_mase']:.3f})\n"
        f"interval coverage 80%: {summary['coverage80']:.1%}, 95%: {summary['coverage95']:.1%}; "
        f"{summary['share_modelled']:.0%} of series modelled; models: {summary['models']}"
    )
    if summary.get("baseline_warning"):
        print(f"warning: {summary['baseline_warning']}", file=sys.stderr)


def cmd_pipeline(args: argparse.Namespace) -> None:
    refuse_future(args.date, "run the daily job for")
    with_prefect_api()
    from flows.pipeline import daily_pipeline

    summary = daily_pipeline(
        partition_date=args.date,
        profile=args.profile,
        capacity=args.capacity,
        train=not args.no_train,
        forecast=not args.no_forecast,
    )
    from callcast.settings import get_settings

    print(render_summary(summary, get_settings()))


def cmd_demo(args: argparse.Namespace) -> None:
    from callcast.database import make_engine
    from callcast.settings import get_settings
    from demo_company.database import build_demo_database

    settings = get_settings()
    url = settings.resolved_database_url()
    database_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if args.reseed or (database_file is not None and not database_file.exists()):
        if database_file is not None:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        print(f"[1/4] Building the demo company database ({args.size}) ...", flush=True)
        engine = make_engine(url)
        try:
            build_demo_database(
                engine,
                size=args.size,
                seed=settings.seed,
                on_progress=lambda line: print("      " + line, flush=True),
            )
        finally:
            engine.dispose()
    else:
        print("[1/4] Demo database already there (use --reseed to rebuild it)", flush=True)
    print("[2/4] Connecting to the Prefect API (runs are visible in the UI) ...", flush=True)
    with_prefect_api()
    from flows.pipeline import daily_pipeline

    print(
        "[3/4] export -> checks -> train + promotion gate -> call list -> forecasts -> monitoring", flush=True
    )
    summary = daily_pipeline(partition_date=args.date, profile=args.profile, capacity=args.capacity)
    print("[4/4] business analyses: segments, campaign effectiveness, sales KPIs", flush=True)
    from flows.analytics import analytics

    reports = analytics(as_of=date.fromisoformat(summary["partition_date"]))
    print(render_summary(summary, settings))
    for name, result in reports.items():
        print(f"Analysis   {name:<13} {result.get('report', '')}")


def cmd_serve_api(args: argparse.Namespace) -> int:
    from app.api.server import main as serve

    argv = [f"--workers={args.workers}"]
    argv += [f"--host={args.host}"] if args.host else []
    argv += [f"--port={args.port}"] if args.port else []
    return serve(argv)


def cmd_serve(args: argparse.Namespace) -> None:
    from deployments.server import serve

    serve(echo=lambda line: print(line, flush=True))


def cmd_stop(args: argparse.Namespace) -> None:
    from deployments.server import stop

    stop(echo=lambda line: print(line, flush=True))


def cmd_status(args: argparse.Namespace) -> int:
    from deployments.server import status

    state = status()
    print(
        f"Prefect server  {state['server']:<9} {state['ui_url']}  ({state['database']}, {state['prefect_home']})"
    )
    print(f"worker          {state['worker']}")
    return 0 if state["server"] != "stopped" else 1


def cmd_settings(args: argparse.Namespace) -> None:
    from callcast.settings import get_settings
    from callcast.settings_doc import effective_settings, settings_markdown

    if args.markdown:
        print(settings_markdown())
        return
    for variable, value in effective_settings(get_settings()):
        print(f"{variable:<48} {value}")


def render_summary(summary: dict[str, Any], settings) -> str:
    """The few lines a person reads at the end of `make demo` or `callcast pipeline`."""
    from callcast import catalog
    from deployments.server import local

    lake = settings.resolved_lake_url()
    day = date.fromisoformat(summary["partition_date"])
    lines = ["", "=" * 78, f"callcast — partition {day}", "=" * 78]
    lines.append(f"Lake       {lake}")
    for table, info in summary["export"].items():
        status = summary["checks"].get(table, "not checked")
        lines.append(
            f"  {table:<18} {info['rows']:>10,} rows  checks: {status:<8} {catalog.partition(catalog.raw(table), day)}/"
        )
    model = summary.get("model")
    if model:
        h = model.get("headline") or {}
        if model.get("unchanged"):
            verdict = "unchanged inputs: nothing retrained, " + ", ".join(model.get("reasons") or [])[:90]
        else:
            verdict = "promoted to champion" if model["promoted"] else "kept as challenger"
        lines += [
            f"Model      propensity {model['version']} ({model.get('candidate', '')}) {verdict}",
            "           "
            + ", ".join(f"{k} {v:.3f}" for k, v in h.items() if isinstance(v, int | float))[:150],
            f"           card: {model.get('registry') or lake + '/' + catalog.registry('propensity')}",
        ]
    call_list = summary.get("call_list")
    if call_list:
        lines += [
            f"Call list  {call_list.get('headline') or call_list['path']}",
            f"           workbook {call_list.get('delivered_to') or call_list.get('workbook')}",
            f"           CSV      {call_list['path']}",
        ]
        for row in call_list.get("head", [])[:5]:
            lines.append(
                f"           #{row['rank']:<4} {row.get('band', ''):<7} {row['name']:<32} "
                f"p={float(row['probability']):.3f}  {row['reasons']}"
            )
    monitoring = summary.get("monitoring")
    if monitoring:
        verdict = "DRIFT DETECTED" if monitoring["drift_detected"] else monitoring["status"].upper()
        why = "; ".join(monitoring.get("reasons") or monitoring.get("notes") or ["nothing moved"])
        lines += [
            f"Monitoring {verdict}: {why[:150]}",
            f"           prediction PSI {monitoring['prediction_psi']:.3f}; report {monitoring['location']}",
        ]
    forecast = summary.get("forecast")
    if forecast:
        lines += [
            f"Forecasts  {forecast['location']}   ({forecast['n_series']} series, {forecast['horizon']} periods ahead)",
            f"           backtest WMAE {forecast['wmae']:.3f} vs seasonal naive {forecast['naive_wmae']:.3f} "
            f"({forecast['wmae_improvement']:.1%} better)",
        ]
    lines += [
        f"Prefect UI {local(settings).ui_url} (runs, artifacts, callcast-state; `make stop` stops it)",
        f"MLflow     {settings.resolved_mlflow_uri()}",
        "=" * 78,
    ]
    return "\n".join(lines)


# -- the parser ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcast",
        description="callcast: batch ML for a company that sells by phone. "
        "Settings come from CALLCAST_* environment variables or .env (secrets never on the command line).",
    )
    parser.add_argument("--verbose", action="store_true", help="show library log lines too")
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    def command(name: str, help_text: str, handler: Callable) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def lake_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--lake", help="lake directory or az://container/prefix (default: CALLCAST_LAKE_URL)"
        )

    seed = command("seed", "(re)build the demo operational database", cmd_seed)
    seed.add_argument("--size", default="demo", choices=["tiny", "small", "demo", "large", "xlarge"])
    seed.add_argument("--seed", type=int, default=None, help="random seed (default: CALLCAST_SEED)")

    next_day = command("next-day", "append the next business day to the demo database", cmd_next_day)
    next_day.add_argument("--days", type=positive_int, default=1)
    next_day.add_argument("--shift-from", type=iso_date, help="inject a distribution shift from this day")
    next_day.add_argument("--demand-factor", type=float, default=1.0)
    next_day.add_argument("--age-offset", type=int, default=0)
    next_day.add_argument("--balance-factor", type=float, default=1.0)
    next_day.add_argument("--telephone-share", type=float, default=None)
    next_day.add_argument(
        "--existing-share", type=float, default=0.0, help="share of existing customers the shift also moves"
    )
    next_day.add_argument(
        "--truth-change", type=float, default=0.0, help="how far the hidden ground truth moves (0..1)"
    )
    next_day.add_argument(
        "--calls", type=positive_int, help="calls per business day (default: scoring capacity)"
    )
    next_day.add_argument(
        "--control-share", type=float, default=0.1, help="share of the calls made at random off the list"
    )
    next_day.add_argument("--random-calls", action="store_true", help="ignore the call list (the old demo)")

    monitor = command(
        "monitor", "drift and performance of the propensity champion; emits the drift event", cmd_monitor
    )
    monitor.add_argument("--date", type=iso_date, help="export to monitor (default: the latest)")
    lake_option(monitor)

    export = command("export", "export every table into dated CSV partitions", cmd_export)
    export.add_argument("--date", type=iso_date, help="partition date (default: today, company time zone)")
    export.add_argument("--tables", nargs="+", help="tables to export (default: all)")
    lake_option(export)

    validate = command("validate", "run the data checks on export partitions", cmd_validate)
    validate.add_argument("--date", type=iso_date, help="partition date (default: each table's latest)")
    validate.add_argument("--tables", nargs="+", help="tables to check (default: all)")
    lake_option(validate)

    train = command("train", "train the propensity model; promote it through the gate", cmd_train)
    train.add_argument(
        "--profile",
        default="quick",
        choices=["quick", "full", "large"],
        help="candidate search profile (large: more candidates and trials, on Dask)",
    )
    train.add_argument("--as-of", type=iso_date, help="use exports up to this date (default: latest)")
    train.add_argument(
        "--dask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the candidate search on Dask (default: when CALLCAST_DASK_ADDRESS is set or --profile large)",
    )
    lake_option(train)

    score = command("score", "build the call list from the champion", cmd_score)
    score.add_argument(
        "--date",
        type=iso_date,
        help="export to build from (default: today); must exist and have passed its checks",
    )
    score.add_argument("--capacity", type=positive_int, help="calls the team can make (default: settings)")
    score.add_argument("--call-date", type=iso_date, help="day of the calls (cool-off reference)")
    score.add_argument("--cooloff-days", type=int, help="skip customers contacted within this many days")
    score.add_argument("--dask", action="store_true", default=None, help="score chunks on a Dask cluster")
    score.add_argument(
        "--allow-stale",
        action="store_true",
        default=None,
        help="emergency: build from the last validated export when the requested one is missing or failed",
    )
    score.add_argument("--force", action="store_true", help="let a rerun of an older day move `latest` back")
    lake_option(score)

    forecast = command("forecast", "forecast sales per series (company data or your own CSV)", cmd_forecast)
    forecast.add_argument("--csv", help="sales history CSV; omit to forecast the company's sales")
    forecast.add_argument("--id-cols", default="", help="comma-separated series-id columns, e.g. Store,Dept")
    forecast.add_argument("--date-col", default="date")
    forecast.add_argument("--value-col", default="sales")
    forecast.add_argument("--regressors", default="", help="comma-separated regressor columns")
    forecast.add_argument("--holiday-col", default=None, help="holiday flag column")
    forecast.add_argument("--freq", choices=["D", "W"], default="D")
    forecast.add_argument(
        "--horizon", type=positive_int, default=None, help="periods ahead (default: settings)"
    )
    forecast.add_argument("--partition-date", type=iso_date, default=None)
    forecast.add_argument("--dask-address", default=None)
    forecast.add_argument(
        "--dask-workers", type=int, default=None, help="local Dask workers (0 = in-process)"
    )
    forecast.add_argument("--mlflow-uri", default=None)
    forecast.add_argument(
        "--folds", type=positive_int, default=None, help="backtest folds (default: settings)"
    )
    forecast.add_argument(
        "--candidates", default="", help="comma-separated candidate models (default: settings)"
    )
    forecast.add_argument(
        "--namespace", default=None, help="name of a bring-your-own run (default: file name)"
    )

    analytics = command(
        "analytics",
        "business analyses: customer segments, campaign effectiveness, sales KPIs (reports in the lake)",
        cmd_analytics,
    )
    analytics.add_argument(
        "name", nargs="?", default="all", choices=["segmentation", "campaign", "sales", "all"],
        help="which analysis (default: all)",
    )  # fmt: skip
    analytics.add_argument(
        "--date", type=iso_date, help="as-of date: exports up to it, output partition (default: today)"
    )
    lake_option(analytics)

    pipeline = command("pipeline", "the daily job: export, checks, train, call list, forecasts", cmd_pipeline)
    pipeline.add_argument("--date", type=iso_date, help="partition date (default: today, company time zone)")
    pipeline.add_argument("--profile", default="quick", choices=["quick", "full", "large"])
    pipeline.add_argument("--capacity", type=positive_int, default=None)
    pipeline.add_argument("--no-train", action="store_true", help="skip retraining")
    pipeline.add_argument("--no-forecast", action="store_true", help="skip the forecasts")

    demo = command("demo", "seed if needed, run the daily job, print a summary", cmd_demo)
    demo.add_argument("--reseed", action="store_true", help="rebuild the demo database first")
    demo.add_argument("--size", default="demo", choices=["tiny", "small", "demo", "large", "xlarge"])
    demo.add_argument("--profile", default="quick", choices=["quick", "full"], help="model search profile")
    demo.add_argument("--capacity", type=positive_int, default=None, help="calls the team can make")
    demo.add_argument("--date", type=iso_date, default=None, help="partition date (default: today)")

    command(
        "serve",
        "start the local Prefect server (UI), register the deployments and alerts, start a worker",
        cmd_serve,
    )
    command("stop", "stop the Prefect server and worker that serve started (by PID)", cmd_stop)
    command("status", "is the local Prefect server / worker running, and where is the UI", cmd_status)

    settings = command("settings", "show the settings in force (secrets only as set / not set)", cmd_settings)
    settings.add_argument("--markdown", action="store_true", help="print the reference table for the README")

    serve_api = command("serve-api", "serve the champion over HTTP (uvicorn)", cmd_serve_api)
    serve_api.add_argument("--host", help="bind address (default: CALLCAST_API__HOST)")
    serve_api.add_argument("--port", type=int, help="port (default: CALLCAST_API__PORT)")
    serve_api.add_argument("--workers", type=positive_int, default=1, help="processes sharing the port")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return run_reporting_errors(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
