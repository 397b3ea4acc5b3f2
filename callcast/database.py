"""The source database: engines for SQLite, PostgreSQL and MariaDB/MySQL, masked URLs, catalog, clear errors."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from callcast.errors import ConfigurationError, SourceDatabaseError, TransientError

_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def parse_url(url: str) -> URL:
    """Parse a database URL, choosing the bundled driver when none is named."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"Cannot parse the database URL {mask_secrets(url, url)!r}: expected e.g. "
            "sqlite:///path/file.db or postgresql://user@host:5432/db."
        ) from exc
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    return parsed


_SECRET_QUERY_KEYS = ("password", "pwd", "passwd", "sslpassword", "access_token", "token", "secret")
_SECRET_QUERY_RE = re.compile(
    r"((?:^|[?&;\s])(?:" + "|".join(_SECRET_QUERY_KEYS) + r")=)[^&;\s]*", re.IGNORECASE
)


def _url_secrets(parsed: URL) -> list[str]:
    """Every secret a URL carries: the password and secret-looking query parameters."""
    found = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            found.extend([value] if isinstance(value, str) else list(value))
    return [s for s in found if s]


def masked_url(url: str | URL) -> str:
    """The URL without its password (``user:***@`` and ``?password=***``), safe for logs and manifests."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    query = {
        key: ("***" if key.lower() in _SECRET_QUERY_KEYS else value) for key, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def mask_secrets(text: str, url: str | URL) -> str:
    """Remove the URL's secrets from any text (driver messages sometimes echo the DSN)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
        secrets = _url_secrets(parsed)
    except ArgumentError:
        match = re.search(r"://[^:/@]*:([^@]*)@", str(url))
        secrets = [match.group(1)] if match else []
        secrets += [m.group(0).split("=", 1)[1] for m in _SECRET_QUERY_RE.finditer(str(url))]
    from urllib.parse import quote

    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 1:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    text = _SECRET_QUERY_RE.sub(r"\1***", text)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for the URL; fails with an actionable message when the database kind is not supported."""
    parsed = parse_url(url)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigurationError(
            f"Unsupported database {parsed.get_backend_name()!r} in {masked_url(parsed)}: callcast exports from "
            "sqlite://, postgresql:// or mysql:// (mariadb://) URLs."
        )
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"Unsupported database URL scheme {parsed.drivername!r} in {masked_url(parsed)}: "
            "use sqlite://, postgresql:// or mysql:// (mariadb://)."
        ) from exc


def source_engine(url: str, **kwargs) -> Engine:
    """An engine on an existing source database: a missing SQLite file is refused, never created empty."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if not in_memory and not database.startswith("file:"):
            from pathlib import Path

            if not Path(database).expanduser().is_file():
                raise SourceDatabaseError(
                    f"The SQLite database {Path(database).expanduser()} does not exist (nothing was created). "
                    "Run `callcast seed` to build the demo database, or fix CALLCAST_DATABASE_URL."
                )
    return make_engine(url, **kwargs)


_TRANSIENT_SQLSTATES = {
    "08000",
    "08001",
    "08003",
    "08004",
    "08006",
    "40001",
    "40P01",
    "53300",
    "57P01",
    "57P03",
}


def explain_database_error(exc: BaseException, url: str | URL) -> SourceDatabaseError:
    """Turn a driver error into a one-line message that says what to do, with secrets masked."""
    parsed = url if isinstance(url, URL) else parse_url(str(url))
    where = masked_url(parsed)
    raw = mask_secrets(str(getattr(exc, "orig", exc) or exc), parsed).strip().splitlines()
    detail = raw[0] if raw else type(exc).__name__
    lowered = " ".join(raw).lower()
    if "password authentication failed" in lowered or "access denied" in lowered:
        message = (
            f"Bad credentials for {where}: the server refused the user/password. "
            "Check the user and password in CALLCAST_DATABASE_URL."
        )
        return SourceDatabaseError(message)
    if "does not exist" in lowered and "database" in lowered or "unknown database" in lowered:
        return SourceDatabaseError(
            f"The database in {where} does not exist ({detail}). Check the database name."
        )
    if "unable to open database file" in lowered:
        return SourceDatabaseError(
            f"Cannot open the SQLite database {where}: the file or its folder is missing or unreadable. "
            "Run `make seed` (or `callcast seed`) to build the demo database, or fix CALLCAST_DATABASE_URL."
        )
    if (
        "connection refused" in lowered
        or "could not connect" in lowered
        or "can't connect" in lowered
        or "name or service not known" in lowered
        or "timeout" in lowered
    ):
        return TransientSourceError(
            f"Cannot reach the database at {where} ({detail}). Is the server running and the host/port right?"
        )
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in _TRANSIENT_SQLSTATES:
        return TransientSourceError(f"Transient database error on {where}: {detail}")
    return SourceDatabaseError(f"Database error on {where}: {detail}")


class TransientSourceError(SourceDatabaseError, TransientError):
    """The database could not be reached or asked us to retry."""


def connect_check(engine: Engine) -> None:
    """Open and close one connection, translating failures."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (OperationalError, DBAPIError) as exc:
        raise explain_database_error(exc, engine.url) from exc


def list_tables(engine: Engine) -> list[str]:
    """User tables of the database's catalog, sorted."""
    try:
        return sorted(sa.inspect(engine).get_table_names())
    except (OperationalError, DBAPIError) as exc:
        raise explain_database_error(exc, engine.url) from exc


def resolve_tables(engine: Engine, requested: Sequence[str] | None, exclude: Sequence[str] = ()) -> list[str]:
    """The tables to export: the catalog's (less ``exclude``), or the requested ones after checking they exist."""
    available = list_tables(engine)
    if not requested:
        available = [name for name in available if name not in exclude]
        if not available:
            raise SourceDatabaseError(
                f"The database {masked_url(engine.url)} has no tables. Seed it first (`make seed`)."
            )
        return available
    missing = [name for name in requested if name not in available]
    if missing:
        raise SourceDatabaseError(
            f"Table(s) {', '.join(map(repr, missing))} not found in {masked_url(engine.url)}. "
            f"Available: {', '.join(available) or 'none'}."
        )
    return list(requested)


def reflect_table(engine: Engine, name: str) -> sa.Table:
    """The table's definition as the database reports it (names come from the catalog, never from user text)."""
    try:
        table = sa.Table(name, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError as exc:
        raise SourceDatabaseError(f"Table {name!r} not found in {masked_url(engine.url)}.") from exc
    except (OperationalError, DBAPIError) as exc:
        raise explain_database_error(exc, engine.url) from exc
    if engine.dialect.name in ("mysql", "mariadb") and any("``" in c.name for c in table.c):
        # SQLAlchemy's MySQL reflection reads SHOW CREATE TABLE and keeps a backtick doubled (`a``b` -> a``b);
        # the real name has one.
        table = sa.Table(
            name,
            sa.MetaData(),
            *[
                sa.Column(c.name.replace("``", "`"), c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in table.c
            ],
        )
    return table
