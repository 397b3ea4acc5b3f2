"""Reading a raw export file in bounded memory, and the file-level problems GX cannot see per chunk.

Missing values: only empty fields are missing (text such as ``NA`` stays text). pandas cannot tell an
unquoted empty field (NULL) from a quoted ``""`` (empty string), so both count as missing in every column.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from data_checks.specs import ColumnSpec, TableSpec

_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class FileProblem(Exception):
    """The file cannot be read as the lake's gzip CSV; ``str(exc)`` says why and what to do."""

    expectation = "expect_file_to_be_readable_gzip_csv"


@dataclass
class TypeIssue:
    """Values present in the file that do not parse as the column's declared type."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)


def _describe_read_error(exc: BaseException, path: Path, rows: int) -> str:
    where = f"{path.name} after {rows:,} data rows"
    if isinstance(exc, EOFError):
        return f"{where}: the gzip stream ends early (truncated file). Re-export the partition."
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"{where}: the gzip data is corrupt ({exc}). Re-export the partition."
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"{where}: the text is not UTF-8 (byte 0x{exc.object[exc.start]:02x} cannot be decoded). "
            "Re-export with UTF-8 encoding."
        )
    if isinstance(exc, pd.errors.ParserError):
        return f"{where}: malformed CSV ({str(exc).strip()}). Check quoting and delimiters of the export."
    return f"{where}: cannot be read ({type(exc).__name__}: {exc})."


def read_header(path: Path, expected: list[str]) -> list[str]:
    """The header row; raises :class:`FileProblem` for empty, non-gzip, truncated, non-UTF-8 or ;-separated files."""
    size = path.stat().st_size
    if size == 0:
        raise FileProblem(f"{path.name} is empty (0 bytes): no header and no rows. Re-export the partition.")
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != b"\x1f\x8b":
        raise FileProblem(
            f"{path.name} is not gzip-compressed (it starts with {magic!r}). Re-export the partition."
        )
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            line = handle.readline()
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        raise FileProblem(_describe_read_error(exc, path, 0)) from exc
    if not line.strip():
        raise FileProblem(f"{path.name} is empty: it decompresses to no header row. Re-export the partition.")
    header = next(csv.reader([line]))
    if len(header) == 1 and len(expected) > 1:
        for sep, name in _DELIMITERS.items():
            if sep in line and set(line.strip().split(sep)) & set(expected):
                raise FileProblem(
                    f"{path.name} uses the {name} ({sep!r}) as delimiter; the lake's CSV uses commas. "
                    "Re-export with the standard dialect."
                )
        raise FileProblem(
            f"{path.name} has a single-column header {header[0][:60]!r}: wrong delimiter or no header row. "
            "Re-export with a comma-separated header."
        )
    return header


def iter_chunks(path: Path, spec: TableSpec, header: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Raw chunks (index = 0-based data row number); errors become :class:`FileProblem`."""
    text_columns = {
        c.name: "str" for c in spec.columns if c.kind in ("string", "date", "timestamp") and c.name in header
    }
    rows = 0
    try:
        reader = pd.read_csv(
            path,
            compression="gzip",
            encoding="utf-8",
            chunksize=chunk_rows,
            dtype=text_columns,
            keep_default_na=False,
            na_values=[""],
            true_values=["true"],
            false_values=["false"],
        )
        with reader:
            for chunk in reader:
                rows += len(chunk)
                yield chunk
    except pd.errors.EmptyDataError:
        return
    except (EOFError, OSError, zlib.error, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise FileProblem(_describe_read_error(exc, path, rows)) from exc


def _integers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index), s.notna()
    if ptypes.is_integer_dtype(s):
        return s, pd.Series(False, index=s.index)
    if ptypes.is_float_dtype(s):
        bad = s.notna() & (s % 1 != 0)
        return s.where(~bad), bad
    num = pd.to_numeric(s.astype("str"), errors="coerce")
    bad = s.notna() & (num.isna() | (num % 1 != 0))
    return num.where(~bad), bad


def _decimals(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_numeric_dtype(s) and not ptypes.is_bool_dtype(s):
        return s.astype("float64"), pd.Series(False, index=s.index)
    if ptypes.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index), s.notna()
    num = pd.to_numeric(s.astype("str"), errors="coerce")
    return num, s.notna() & num.isna()


def _booleans(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_bool_dtype(s):
        return s, pd.Series(False, index=s.index)
    mapped = s.map({True: True, False: False, "true": True, "false": False})
    bad = s.notna() & mapped.isna()
    return mapped.astype("boolean"), bad


def _datetimes(s: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    fmt = "%Y-%m-%d" if kind == "date" else "ISO8601"
    try:
        parsed = pd.to_datetime(s, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # mixed UTC offsets
        parsed = pd.to_datetime(s, format=fmt, errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed, s.notna() & parsed.isna()


def parse_chunk(
    raw: pd.DataFrame, columns: list[ColumnSpec], sample_rows: int
) -> tuple[pd.DataFrame, dict[str, TypeIssue]]:
    """Typed copy of ``raw`` (unparseable values become missing) and the type problems found per column."""
    typed = raw.copy(deep=False)
    issues: dict[str, TypeIssue] = {}
    for col in columns:
        if col.name not in raw.columns or col.kind == "string":
            continue
        s = raw[col.name]
        if col.kind == "integer":
            values, bad = _integers(s)
        elif col.kind == "decimal":
            values, bad = _decimals(s)
        elif col.kind == "boolean":
            values, bad = _booleans(s)
        else:
            values, bad = _datetimes(s, col.kind)
        typed[col.name] = values
        count = int(bad.sum())
        if count:
            bad_values = s[bad]
            issues[col.name] = TypeIssue(
                count,
                [str(v) for v in bad_values.drop_duplicates().head(3)],
                [int(i) for i in bad_values.index[:sample_rows]],
            )
    return typed, issues
