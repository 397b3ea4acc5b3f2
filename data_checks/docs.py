"""The aggregated result page placed next to the GX Data Docs site (GX renders one page per chunk)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from callcast.catalog import partition_label
from data_checks.result import CheckResult

_COLOURS = {"passed": "#1b7f3b", "warning": "#b26a00", "failed": "#b3261e"}


def render_summary_html(result: CheckResult, has_gx_site: bool = True) -> str:
    """A self-contained HTML page: status, failed expectations, masked sample rows, link to the GX site."""
    colour = _COLOURS[result.status]
    rows = (
        "".join(
            f"<tr class='{f.severity}'><td>{escape(f.severity)}</td><td>{escape(f.expectation)}</td>"
            f"<td>{escape(f.column or '')}</td><td>{escape(f.details)}</td></tr>"
            for f in result.failed_expectations
        )
        or "<tr><td colspan='4'>Every expectation held.</td></tr>"
    )
    sample = ""
    if result.sample_rows:
        columns = list(dict.fromkeys(k for row in result.sample_rows for k in row))
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in columns)
            + "</tr>"
            for r in result.sample_rows
        )
        sample = f"<h2>Sample of offending rows (sensitive columns masked)</h2><table><tr>{head}</tr>{body}</table>"
    link = (
        "<p><a href='gx/index.html'>Great Expectations Data Docs</a>: the suite and one validation result per "
        "chunk of the file.</p>"
        if has_gx_site
        else "<p>The file could not be read, so no Great Expectations validation ran.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(partition_label(result.table, result.partition_date))}: {result.status}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
.status {{ display: inline-block; padding: .2rem .8rem; color: #fff; background: {colour}; border-radius: 4px; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
tr.critical td:first-child {{ color: #b3261e; font-weight: bold; }}
tr.warning td:first-child {{ color: #b26a00; font-weight: bold; }}
</style></head><body>
<h1>{escape(result.table)} partition {escape(result.partition_date)} <span class="status">{result.status}</span></h1>
<p>{result.rows_checked:,} rows checked against {result.expectations_evaluated} expectations
at {escape(result.checked_at or "")}{f" in {result.seconds:.1f}s" if result.seconds else ""}.</p>
<h2>Failed expectations</h2>
<table><tr><th>severity</th><th>expectation</th><th>column</th><th>what is wrong</th></tr>{rows}</table>
{sample}
{link}
</body></html>
"""


def write_summary_page(result: CheckResult, path: Path, has_gx_site: bool = True) -> Path:
    path.write_text(render_summary_html(result, has_gx_site), encoding="utf-8")
    return path
