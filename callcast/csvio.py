"""The lake's CSV dialect: exact round trip of database values.

- RFC 4180 quoting, comma, ``\\n`` line ends, UTF-8, a header row.
- NULL is an unquoted empty field; an empty string is ``""`` (the same as PostgreSQL's ``COPY ... CSV``).
- Booleans ``true``/``false``; dates ``YYYY-MM-DD``; timestamps ``YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]``;
  decimals as their exact text.

Python's ``csv`` writer cannot tell NULL from ``''``, so empty strings are written as a NUL marker and
replaced by ``""`` afterwards (NUL cannot occur in PostgreSQL text and is refused here).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import types as sqltypes

_EMPTY_MARKER = "\x00"


class NulCharacterError(ValueError):
    """A text value holds NUL (``\\x00``), which no CSV export can carry; says where."""

    def __init__(self, row_index: int, column_index: int) -> None:
        super().__init__(
            f"a text value contains a NUL character, which CSV exports cannot carry "
            f"(row {row_index + 1} of the batch, column {column_index + 1})"
        )
        self.row_index = row_index
        self.column_index = column_index


def format_interval(value: timedelta) -> str:
    """A TIME/interval the way MariaDB and PostgreSQL print it: ``[-]HH:MM:SS[.ffffff]``, hours may pass 24."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def format_bits(value: Any, length: int) -> str:
    """A BIT(n) value as PostgreSQL's COPY writes bit strings: ``10101010``."""
    number = int.from_bytes(value, "big") if isinstance(value, bytes | bytearray) else int(value)
    return format(number, f"0{length}b")


def normalize_type(sql_type: sqltypes.TypeEngine) -> str:
    """A portable type name for the manifest (``integer``, ``decimal(10,2)``, ``timestamp``...)."""
    if type(sql_type).__name__ == "BIT":  # MySQL/MariaDB BIT(n): a bit string, as PostgreSQL's bit(n)
        return f"bit({getattr(sql_type, 'length', None) or 1})"
    if isinstance(sql_type, sqltypes.Boolean):
        return "boolean"
    if type(sql_type).__name__ == "TINYINT" and getattr(sql_type, "display_width", None) == 1:
        return "boolean"  # MySQL/MariaDB spell BOOLEAN as TINYINT(1)
    if isinstance(sql_type, sqltypes.BigInteger):
        return "bigint"
    if isinstance(sql_type, sqltypes.Integer):
        return "integer"
    if isinstance(sql_type, sqltypes.Float):
        return "float"
    if isinstance(sql_type, sqltypes.Numeric):
        if sql_type.precision is not None and sql_type.scale is not None:
            return f"decimal({sql_type.precision},{sql_type.scale})"
        return "decimal"
    if isinstance(sql_type, sqltypes.DateTime):
        return "timestamp"
    if isinstance(sql_type, sqltypes.Date):
        return "date"
    if isinstance(sql_type, sqltypes.Time):
        return "time"
    if isinstance(sql_type, sqltypes.LargeBinary | sqltypes._Binary):
        return "binary"
    if isinstance(sql_type, sqltypes.String):
        return "string"
    name = type(sql_type).__name__.lower()
    if "bool" in name or name == "tinyint":
        return "boolean" if "bool" in name else "integer"
    return "string"


def _cell_expression(index: int, type_name: str, dynamic: bool = False) -> str:
    """Python expression turning driver value ``r[index]`` into what the csv module should write.

    ``dynamic`` (SQLite: any column may hold any type) also keeps ``''`` apart from NULL in non-text columns
    and writes stray ``bytes`` as PostgreSQL writes bytea (``\\x…`` hex), never as Python's ``b'…'``.
    """
    v = f"r[{index}]"
    hexed = f"'\\\\x' + bytes({v}).hex()"
    if type_name == "string":
        if dynamic:
            return f"(M if {v} == '' else {hexed} if {v}.__class__ is bytes else {v})"
        return f"(M if {v} == '' else {v})"
    if (
        type_name == "boolean"
    ):  # a BOOLEAN column holding another integer keeps it (as the database's own CSV)
        cell = (
            f"(None if {v} is None else 'true' if {v} is True or {v} == 1 else "
            f"'false' if {v} is False or {v} == 0 else str({v}))"
        )
    elif type_name == "timestamp":  # drivers return text (SQLite) or datetimes; str(datetime) is ISO
        cell = f"({v} if {v} is None or {v}.__class__ is str else str({v}))"
    elif type_name == "time":
        cell = f"(None if {v} is None else interval({v}) if {v}.__class__ is timedelta else str({v}))"
    elif type_name.startswith("bit("):
        cell = f"(None if {v} is None else bits({v}, {int(type_name[4:-1])}))"
    elif type_name == "binary":
        cell = f"(None if {v} is None else {hexed})"
    else:
        cell = v  # numbers, decimals, dates: str() already gives the exact text
    if dynamic:
        return f"(M if {v} == '' else {hexed} if {v}.__class__ is bytes else {cell})"
    return cell


class RowEncoder:
    """Encodes batches of driver rows as CSV text in the lake's dialect.

    The per-row conversion is generated once per table (a lambda over column positions only, no user text)
    so a row costs one call instead of one call per value.
    """

    def __init__(self, column_types: Sequence[str], *, dynamic_typing: bool = False) -> None:
        cells = [_cell_expression(i, t, dynamic_typing) for i, t in enumerate(column_types)]
        plain = all(cell == f"r[{i}]" for i, cell in enumerate(cells))
        scope = {
            "M": _EMPTY_MARKER,
            "bytes": bytes,
            "str": str,
            "timedelta": timedelta,
            "interval": format_interval,
            "bits": format_bits,
        }
        self._convert = None if plain else eval("lambda r: (" + ", ".join(cells) + ",)", scope)  # noqa: S307
        strings = [i for i, t in enumerate(column_types) if t == "string" or dynamic_typing]
        self._count_empty = (
            eval("lambda r: " + " + ".join(f"(r[{i}] == '')" for i in strings), {}) if strings else None  # noqa: S307
        )

    def header(self, names: Sequence[str]) -> str:
        return self._write([tuple(names)])

    def encode(self, rows: Sequence[Sequence[Any]]) -> str:
        if not rows:
            return ""
        text = self._write(map(self._convert, rows) if self._convert else rows)
        if _EMPTY_MARKER not in text:
            return text
        markers = sum(map(self._count_empty, rows)) if self._count_empty else 0
        if text.count(_EMPTY_MARKER) != markers:
            raise _locate_nul(rows)
        return text.replace(_EMPTY_MARKER, '""')

    @staticmethod
    def _write(rows: Iterable[Sequence[Any]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()


def _locate_nul(rows: Sequence[Sequence[Any]]) -> NulCharacterError | ValueError:
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if isinstance(value, str) and _EMPTY_MARKER in value:
                return NulCharacterError(i, j)
    return ValueError("a text value contains a NUL character, which CSV exports cannot carry")


def parse_exact(text: str) -> list[list[str | None]]:
    """Parse lake CSV text keeping NULL (``None``) apart from the empty string (``''``).

    A small state machine: ``csv.reader`` on Python 3.11 cannot tell a quoted empty field from an empty one.
    """
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    field: list[str] = []
    quoted = False
    in_quotes = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    field.append('"')
                    i += 1
                else:
                    in_quotes = False
            else:
                field.append(ch)
        elif ch == '"':
            in_quotes = True
            quoted = True
        elif ch == ",":
            row.append("".join(field) if (field or quoted) else None)
            field, quoted = [], False
        elif ch == "\n" or (ch == "\r" and i + 1 < n and text[i + 1] == "\n"):
            if ch == "\r":
                i += 1
            row.append("".join(field) if (field or quoted) else None)
            rows.append(row)
            row, field, quoted = [], [], False
        else:
            field.append(ch)
        i += 1
    if in_quotes:
        raise ValueError("CSV text ends inside a quoted field (truncated file?)")
    if field or quoted or row:
        row.append("".join(field) if (field or quoted) else None)
        rows.append(row)
    return rows


def pandas_read_options(columns: Sequence[dict[str, str]]) -> dict[str, Any]:
    """``pandas.read_csv`` options that type a lake CSV from its manifest's ``columns``.

    Only empty fields are missing values: text such as ``NA`` or ``NULL`` stays text.
    """
    dtype: dict[str, Any] = {}
    parse_dates: list[str] = []
    for column in columns:
        name, kind = column["name"], column["type"]
        if kind in ("integer", "bigint"):
            dtype[name] = "Int64"
        elif kind == "float" or kind.startswith("decimal"):
            dtype[name] = "float64"
        elif kind == "boolean":
            dtype[name] = "boolean"
        elif kind in ("date", "timestamp"):
            parse_dates.append(name)
        else:
            dtype[name] = "string"
    return {
        "dtype": dtype,
        "parse_dates": parse_dates,
        "keep_default_na": False,
        "na_values": [""],
        "true_values": ["true", "t"],
        "false_values": ["false", "f"],
    }
