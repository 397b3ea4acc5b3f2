"""Flows: business analyses at chosen moments — customer segments, campaign effectiveness, sales KPIs.

``read validated exports → analyse → commit analytics/<name>/dt=<as-of>/ (CSV, PNG, report.html) → artifact``.
One flow per analysis, and ``analytics`` to run one or all of them (each analysis still runs and publishes
when another fails; the run fails at the end, naming the failures). ``as_of`` defaults to the company's today.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from callcast.errors import CallcastError
from models.analytics.analyses import ANALYSES
from tasks.analytics import run_analysis_task


class AnalysesFailed(CallcastError):
    """One or more analyses of an ``analytics`` run failed (the others were published)."""


def _context(as_of: date | None, lake_url: str | None):
    from callcast.runtime import company_today
    from callcast.settings import get_settings

    settings = get_settings(lake_url=lake_url) if lake_url else get_settings()
    return settings.analytics, as_of or company_today(settings)


def _print(summary: dict[str, Any]) -> None:
    print(f"{summary['analysis']}: {summary['report']}")
    for fact in summary["facts"]:
        print(f"  - {fact}")
    for warning in summary["warnings"]:
        print(f"  ! {warning}")


@flow(name="analytics-segmentation", log_prints=True)
def customer_segmentation(as_of: date | None = None, lake_url: str | None = None) -> dict[str, Any]:
    """Customer segments of the validated customers snapshot: k search, profiles, conversion, champion score."""
    cfg, day = _context(as_of, lake_url)
    summary = run_analysis_task("segmentation", day, cfg, lake_url)
    _print(summary)
    return summary


@flow(name="analytics-campaign", log_prints=True)
def campaign_effectiveness(as_of: date | None = None, lake_url: str | None = None) -> dict[str, Any]:
    """Conversion with intervals, diminishing returns and break-even call, stop list, call-list lift."""
    cfg, day = _context(as_of, lake_url)
    summary = run_analysis_task("campaign", day, cfg, lake_url)
    _print(summary)
    return summary


@flow(name="analytics-sales", log_prints=True)
def sales_kpis(as_of: date | None = None, lake_url: str | None = None) -> dict[str, Any]:
    """Sales by store, product and month; growth vs last year; top movers; forecast against actual."""
    cfg, day = _context(as_of, lake_url)
    summary = run_analysis_task("sales", day, cfg, lake_url)
    _print(summary)
    return summary


@flow(name="analytics", log_prints=True)
def analytics(
    analysis: str = "all", as_of: date | None = None, lake_url: str | None = None
) -> dict[str, Any]:
    """Run one analysis (``segmentation``, ``campaign``, ``sales``) or ``all``; returns summaries by name."""
    names = list(ANALYSES) if analysis == "all" else [analysis]
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise ValueError(f"Unknown analysis {unknown[0]!r}; choose one of {', '.join(ANALYSES)} or 'all'.")
    cfg, day = _context(as_of, lake_url)
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in names:
        state = run_analysis_task(name, day, cfg, lake_url, return_state=True)
        if state.is_completed():
            results[name] = state.result()
            _print(results[name])
        else:
            failed[name] = str(state.message or state.name)
            print(f"{name}: FAILED — {failed[name]}")
    if failed:
        raise AnalysesFailed(
            f"{len(failed)} of {len(names)} analyses failed ({'; '.join(f'{n}: {m}' for n, m in failed.items())}); "
            "the others were published."
        )
    return results


if __name__ == "__main__":
    analytics()
