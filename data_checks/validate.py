"""Validate one raw export partition in bounded memory and aggregate the outcome into a :class:`CheckResult`."""

from __future__ import annotations

import json
import tempfile
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_checks.config import ChecksConfig
from data_checks.reader import FileProblem, TypeIssue, iter_chunks, parse_chunk, read_header
from data_checks.result import CheckResult, FailedExpectation, overall_status
from data_checks.specs import ExpectationPlan, TableSpec, plan_suite, table_spec

ProgressFn = Callable[[int, float], None]
_MAX_SAMPLES = 50


@dataclass
class _Tally:
    """One expectation's outcome summed over chunks."""

    plan: ExpectationPlan
    unexpected: int = 0
    examples: list[Any] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    observed: Any = None
    errors: list[str] = field(default_factory=list)
    failed: bool = False


def _fmt(value: Any) -> str:
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return repr(value) if isinstance(value, str) else str(value)


def _examples(values: list[Any], limit: int = 3) -> str:
    seen: list[str] = []
    for v in values:
        text = _fmt(v)
        if text not in seen:
            seen.append(text)
    return ", ".join(seen[:limit])


class _Aggregator:
    def __init__(self, spec: TableSpec, config: ChecksConfig) -> None:
        self.spec = spec
        self.config = config
        self.tallies: dict[str, _Tally] = {}
        self.type_issues: dict[str, TypeIssue] = {}
        self.ids: list[np.ndarray] = []
        self.id_rows: list[np.ndarray] = []
        self.samples: list[dict[str, Any]] = []
        self.sampled: dict[str, int] = {}

    def add_types(self, issues: dict[str, TypeIssue]) -> None:
        for name, issue in issues.items():
            total = self.type_issues.setdefault(name, TypeIssue())
            total.count += issue.count
            total.examples = (total.examples + issue.examples)[:3]
            total.index = (total.index + issue.index)[: self.config.sample_rows]

    def add_ids(self, typed: pd.DataFrame) -> None:
        if self.spec.id_column not in typed.columns:
            return
        ids = pd.to_numeric(typed[self.spec.id_column], errors="coerce")
        keep = ids.notna().to_numpy()
        self.ids.append(ids.to_numpy(dtype="float64")[keep].astype(np.int64))
        self.id_rows.append(typed.index.to_numpy()[keep])

    def add_results(
        self, pairs, raw: pd.DataFrame, typed: pd.DataFrame, chunk_types: dict[str, TypeIssue]
    ) -> None:
        for plan, res in pairs:
            tally = self.tallies.setdefault(plan.key, _Tally(plan))
            if res.exception_info and res.exception_info.get("raised_exception"):
                tally.failed = True
                tally.errors.append(str(res.exception_info.get("exception_message")))
                continue
            if res.success:
                continue
            info = res.result or {}
            index = [
                int(i) for i in info.get("partial_unexpected_index_list") or [] if not isinstance(i, dict)
            ]
            if plan.type in ("expect_column_min_to_be_between", "expect_column_max_to_be_between"):
                col = typed[plan.column]
                if plan.type.endswith("min_to_be_between"):
                    mask = col < plan.kwargs["min_value"]
                    tally.observed = col.min() if tally.observed is None else min(tally.observed, col.min())
                else:
                    mask = col > plan.kwargs["max_value"]
                    tally.observed = col.max() if tally.observed is None else max(tally.observed, col.max())
                count = int(mask.sum())
                if count == 0:
                    continue
                index = [int(i) for i in col.index[mask.to_numpy()][: self.config.sample_rows]]
            elif plan.type == "expect_table_columns_to_match_ordered_list":
                tally.failed = True
                tally.observed = info.get("observed_value")
                continue
            else:
                count = int(info.get("unexpected_count") or 0)
                if plan.type == "expect_column_values_to_not_be_null" and plan.column in chunk_types:
                    bad = set(chunk_types[plan.column].index)
                    count -= chunk_types[plan.column].count  # unparseable values are reported as type errors
                    index = [i for i in index if i not in bad]
                if count <= 0:
                    continue
                tally.examples = (tally.examples + list(info.get("partial_unexpected_list") or []))[:10]
            tally.failed = True
            tally.unexpected += count
            tally.index = (tally.index + index)[: self.config.sample_rows]
            self._sample(raw, tally.index, plan.description)

    def _sample(self, raw: pd.DataFrame, index: list[int], reason: str) -> None:
        taken = self.sampled.get(reason, 0)
        for i in index:
            if taken >= self.config.sample_rows or len(self.samples) >= _MAX_SAMPLES:
                break
            if i not in raw.index:
                continue
            row = {"_row": i + 1, "_failed": reason}
            for name, value in raw.loc[i].items():
                missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
                if missing:
                    row[str(name)] = None
                elif name in self.config.sensitive_columns:
                    row[str(name)] = "***"
                else:
                    value = value.item() if isinstance(value, np.generic) else value
                    row[str(name)] = int(value) if isinstance(value, float) and value.is_integer() else value
            self.samples.append(row)
            taken += 1
        self.sampled[reason] = taken

    def duplicate_ids(self) -> tuple[int, int, list[int], list[int]]:
        """(distinct duplicated ids, rows holding them, example ids, example row numbers)."""
        if not self.ids:
            return 0, 0, [], []
        ids = np.concatenate(self.ids)
        rows = np.concatenate(self.id_rows)
        self.ids, self.id_rows = [], []
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            return 0, 0, [], []
        dup_values = np.unique(ordered[1:][same])
        in_dup = np.isin(ordered, dup_values)
        dup_rows = np.sort(rows[order][in_dup])
        return (
            len(dup_values),
            int(in_dup.sum()),
            [int(v) for v in dup_values[:5]],
            [int(r) + 1 for r in dup_rows[:6]],
        )


def _failures_from_tallies(agg: _Aggregator, rows: int) -> list[FailedExpectation]:
    out: list[FailedExpectation] = []
    spec = agg.spec
    for name, issue in agg.type_issues.items():
        kind = spec.column(name).kind
        article = "an" if kind[0] in "aeiou" else "a"
        out.append(
            FailedExpectation(
                expectation="expect_column_values_to_match_declared_type", column=name, severity="critical",
                details=f"{name}: {issue.count:,} values are not {article} {kind} (e.g. {_examples(issue.examples)}).",
                unexpected_count=issue.count,
            )
        )  # fmt: skip
    for tally in agg.tallies.values():
        plan, col = tally.plan, tally.plan.column
        if tally.errors:
            out.append(
                FailedExpectation(
                    expectation=plan.type, column=col, severity=plan.severity,
                    details=f"{col or 'table'}: '{plan.description}' could not be evaluated ({tally.errors[0]}).",
                )
            )  # fmt: skip
            continue
        if not tally.failed or plan.type in ("expect_table_columns_to_match_ordered_list",
                                             "expect_column_values_to_be_unique"):  # fmt: skip
            continue
        n, share = tally.unexpected, f"{tally.unexpected / max(rows, 1):.2%}"
        k = plan.kwargs
        if plan.type == "expect_column_values_to_not_be_null":
            text = f"{col}: {n:,} of {rows:,} rows ({share}) are empty, but {col} is required."
        elif plan.type == "expect_column_values_to_be_between":
            lo, hi = (
                _fmt(k["min_value"]) if k["min_value"] is not None else "…",
                _fmt(k["max_value"]) if k["max_value"] is not None else "…",
            )
            text = (
                f"{col}: {n:,} values ({share}) are outside [{lo}, {hi}] (e.g. {_examples(tally.examples)})."
            )
        elif plan.type == "expect_column_values_to_be_in_set":
            text = (
                f"{col}: {n:,} values ({share}) are not allowed categories (e.g. {_examples(tally.examples)}); "
                f"allowed: {', '.join(k['value_set'])}."
            )
        elif plan.type == "expect_column_min_to_be_between":
            text = f"{col}: {n:,} values are before {_fmt(k['min_value'])} (earliest {_fmt(tally.observed)})."
        elif plan.type == "expect_column_max_to_be_between":
            text = (
                f"{col}: {n:,} values are after the partition day {_fmt(k['max_value'])[:10]} "
                f"(latest {_fmt(tally.observed)})."
            )
        elif plan.type == "expect_column_pair_values_a_to_be_greater_than_b":
            text = f"{col}: {n:,} rows have {k['column_A']} before {k['column_B']}."
        else:
            text = f"{col}: {n:,} rows fail '{plan.description}'."
        out.append(
            FailedExpectation(
                expectation=plan.type, column=col, severity=plan.severity, details=text, unexpected_count=n
            )
        )
    return out


def _header_failures(spec: TableSpec, header: list[str], manifest: dict | None) -> list[FailedExpectation]:
    out = []
    expected = spec.column_names
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if missing or extra or dupes:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s): {', '.join(extra)}")
        if dupes:
            parts.append(f"repeated column(s): {', '.join(dupes)}")
        out.append(
            FailedExpectation(
                expectation="expect_table_columns_to_match_ordered_list", column=None, severity="critical",
                details=f"header does not match the {spec.name} schema: {'; '.join(parts)}.",
            )
        )  # fmt: skip
    elif header != expected:
        out.append(
            FailedExpectation(
                expectation="expect_table_columns_to_match_ordered_list", column=None, severity="warning",
                details=f"columns are in a different order than the schema ({', '.join(header)}).",
            )
        )  # fmt: skip
    if manifest and manifest.get("columns"):
        listed = [c["name"] for c in manifest["columns"]]
        if listed != header:
            out.append(
                FailedExpectation(
                    expectation="expect_header_to_match_manifest", column=None, severity="critical",
                    details=f"the file's header ({', '.join(header)}) differs from the manifest's columns "
                    f"({', '.join(listed)}): the file was replaced or the export is inconsistent.",
                )
            )  # fmt: skip
    return out


def _row_count_failures(
    spec: TableSpec, rows: int, manifest: dict | None, previous_rows: int | None, config: ChecksConfig
) -> list[FailedExpectation]:
    out = []
    if manifest is not None and manifest.get("rows") is not None and int(manifest["rows"]) != rows:
        out.append(
            FailedExpectation(
                expectation="expect_table_row_count_to_equal_manifest", column=None, severity="critical",
                details=f"the file has {rows:,} data rows but its manifest says {int(manifest['rows']):,}: "
                "the file is incomplete or was changed after the export.",
            )
        )  # fmt: skip
    name = "expect_table_row_count_to_be_within_tolerance_of_previous"
    if spec.mode == "snapshot":
        if rows == 0:
            out.append(FailedExpectation(expectation="expect_table_row_count_to_be_between", column=None,
                                         severity="critical",
                                         details=f"no rows: a {spec.name} snapshot must hold the whole table."))  # fmt: skip
        elif previous_rows:
            change = (rows - previous_rows) / previous_rows
            if abs(change) > config.snapshot_row_tolerance:
                out.append(
                    FailedExpectation(
                        expectation=name, column=None, severity="critical",
                        details=f"rows changed from {previous_rows:,} to {rows:,} ({change:+.0%}) since the previous "
                        f"partition; at most ±{config.snapshot_row_tolerance:.0%} is expected for a snapshot.",
                    )
                )  # fmt: skip
    else:
        if rows == 0:
            out.append(FailedExpectation(expectation="expect_table_row_count_to_be_between", column=None,
                                         severity="warning",
                                         details=f"no new {spec.name} rows since the previous export."))  # fmt: skip
        elif previous_rows:
            f = config.incremental_row_factor
            if rows > previous_rows * f or rows < previous_rows / f:
                out.append(
                    FailedExpectation(
                        expectation=name, column=None, severity="warning",
                        details=f"{rows:,} new rows vs {previous_rows:,} in the previous slice "
                        f"(more than {f:g}x apart): check the export's watermark and the source.",
                    )
                )  # fmt: skip
    return out


def _unique_failure(spec: TableSpec, agg: _Aggregator) -> list[FailedExpectation]:
    distinct, rows, example_ids, example_rows = agg.duplicate_ids()
    if not distinct:
        return []
    col = spec.id_column
    return [
        FailedExpectation(
            expectation="expect_column_values_to_be_unique", column=col, severity="critical",
            details=f"{col}: {distinct:,} ids appear more than once ({rows:,} rows), e.g. "
            f"{', '.join(map(str, example_ids))} (rows {', '.join(map(str, example_rows))}).",
            unexpected_count=rows,
        )
    ]  # fmt: skip


def validate_partition(
    csv_gz_path: Path,
    table: str,
    partition_date: date,
    manifest: dict | None = None,
    previous_rows: int | None = None,
    config: ChecksConfig | None = None,
    *,
    docs_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> CheckResult:
    """Check one raw export file chunk by chunk; with ``docs_dir``, also write Data Docs there."""
    started = _time.perf_counter()
    config = config or ChecksConfig()
    path = Path(csv_gz_path)
    spec = table_spec(table, (manifest or {}).get("mode"), config.customer_schema)
    failures: list[FailedExpectation] = []
    agg = _Aggregator(spec, config)
    rows = 0
    runner = None
    work = tempfile.TemporaryDirectory(prefix="callcast-gx-") if docs_dir is not None else None
    try:
        try:
            header = read_header(path, spec.column_names)
        except FileProblem as exc:
            failures.append(
                FailedExpectation(expectation=FileProblem.expectation, severity="critical", details=str(exc))
            )
            header = None
        if header is not None:
            failures += _header_failures(spec, header, manifest)
            present = [c for c in spec.column_names if c in header]
            from data_checks.gx_runner import SuiteRunner

            runner = SuiteRunner(
                f"{table}",
                plan_suite(spec, partition_date, config, present),
                Path(work.name) if work else None,
            )
            columns = [spec.column(c) for c in present]
            try:
                for number, raw in enumerate(iter_chunks(path, spec, header, config.chunk_rows), start=1):
                    if raw.empty:
                        continue
                    typed, issues = parse_chunk(raw, columns, config.sample_rows)
                    agg.add_types(issues)
                    for name, issue in issues.items():
                        agg._sample(
                            raw, issue.index, f"{name} has the declared type {spec.column(name).kind}"
                        )
                    agg.add_ids(typed)
                    run_name = f"{table}_dt={partition_date.isoformat()}_chunk-{number:03d}_rows-{rows + 1}-{rows + len(raw)}"
                    pairs = runner.run(typed, run_name, max(config.sample_rows, 5))
                    agg.add_results(pairs, raw, typed, issues)
                    rows += len(raw)
                    del raw, typed
                    if on_progress:
                        on_progress(rows, _time.perf_counter() - started)
            except FileProblem as exc:
                failures.append(
                    FailedExpectation(
                        expectation=FileProblem.expectation, severity="critical", details=str(exc)
                    )
                )
            failures += _failures_from_tallies(agg, rows)
            failures += _unique_failure(spec, agg)
            readable = not any(f.expectation == FileProblem.expectation for f in failures)
            if readable:
                failures += _row_count_failures(spec, rows, manifest, previous_rows, config)
        result = CheckResult(
            table=table,
            partition_date=partition_date.isoformat(),
            status=overall_status(failures),
            failed_expectations=sorted(failures, key=lambda f: f.severity != "critical"),
            rows_checked=rows,
            expectations_evaluated=len(agg.tallies),
            sample_rows=agg.samples,
            checked_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            manifest_sha256=manifest_digest(manifest) if manifest else None,
        )
        if docs_dir is not None:
            from data_checks.docs import write_summary_page

            docs_dir = Path(docs_dir)
            docs_dir.mkdir(parents=True, exist_ok=True)
            if runner is not None:
                runner.build_docs(docs_dir / "gx")
            result.data_docs = "index.html"
            write_summary_page(result, docs_dir / "index.html", has_gx_site=runner is not None)
        result.seconds = round(_time.perf_counter() - started, 2)
        return result
    finally:
        if work is not None:
            work.cleanup()


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON (lineage: which export was checked)."""
    import hashlib

    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()
