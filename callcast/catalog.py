"""The dataset catalog: the one module that names the lake's datasets and spells their keys.

Every other module asks the catalog for a prefix (``catalog.raw("sales")``) or a key
(``catalog.partition(prefix, day)``); none writes ``raw/…`` or ``dt=…`` itself. Keys are POSIX-style and
relative to the lake root, whatever the storage backend.

Layout::

    raw/<table>/dt=YYYY-MM-DD/<table>.csv.gz + _manifest.json        exports
    checks/<table>/dt=YYYY-MM-DD/result.json                          data-check verdicts
    data_docs/…                                                       Great Expectations Data Docs
    registry/<model>/<version>/…, registry/<model>/aliases.json       model registry
    call_lists/dt=YYYY-MM-DD/…, call_lists/latest/…, latest.json      call lists
    call_lists/serving/<model>-<version>.json                         serving context of a model version
    forecasts/dt=YYYY-MM-DD/…                                         the company's sales forecasts
    forecasts/byo/<name>/dt=YYYY-MM-DD/…                              bring-your-own forecasts
    monitoring/<model>/dt=YYYY-MM-DD/…                                drift and performance
    analytics/<name>/dt=YYYY-MM-DD/…                                  business analyses
    state/…                                                           small status documents
"""

from __future__ import annotations

import re
from datetime import date

from callcast.errors import ConfigurationError

MANIFEST_NAME = "_manifest.json"
STAGING = "_staging"
PARTITION_PREFIX = "dt="

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file- and key-safe spelling of a user-supplied name (table, series namespace, analysis).

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other run of characters becomes ``_``; leading
    dots are dropped, so ``../../x`` can never climb out of its folder. Refuses names that end up empty.
    """
    cleaned = _SAFE.sub("_", str(name)).lstrip(".")
    if not cleaned or cleaned in {"_", "."}:
        raise ConfigurationError(f"{name!r} cannot name a dataset: use letters, digits, '.', '_' or '-'.")
    return cleaned


def partition(prefix: str, partition_date: date) -> str:
    """``<prefix>/dt=YYYY-MM-DD``."""
    return f"{prefix.strip('/')}/{PARTITION_PREFIX}{partition_date.isoformat()}"


def partition_label(name: str, partition_date: date | str) -> str:
    """How people read a partition in messages: ``customers dt=2024-03-31``."""
    day = partition_date.isoformat() if isinstance(partition_date, date) else partition_date
    return f"{name} {PARTITION_PREFIX}{day}"


def partition_pattern(file_name: str) -> re.Pattern[str]:
    """Matches a key ending in ``/dt=YYYY-MM-DD/<file_name>``; group 1 is the date."""
    return re.compile(
        r"/" + re.escape(PARTITION_PREFIX) + r"(\d{4}-\d{2}-\d{2})/" + re.escape(file_name) + "$"
    )


def partition_file(prefix: str, partition_date: date, name: str) -> str:
    """``<prefix>/dt=YYYY-MM-DD/<name>``."""
    return f"{partition(prefix, partition_date)}/{name}"


def manifest(prefix: str, partition_date: date) -> str:
    return partition_file(prefix, partition_date, MANIFEST_NAME)


def staging(prefix: str) -> str:
    """Where a writer uploads files before it commits them."""
    return f"{prefix.strip('/')}/{STAGING}"


LEASES = "_leases"


def lease(prefix: str, partition_date: date | None = None) -> str:
    """The lock (lease) object of one partition, or of the whole dataset when ``partition_date`` is None."""
    scope = f"{PARTITION_PREFIX}{partition_date.isoformat()}" if partition_date else "all"
    return f"{prefix.strip('/')}/{LEASES}/{scope}.lease"


# -- exports and checks ----------------------------------------------------------------------------


def raw(table: str) -> str:
    """Prefix of a table's exported partitions."""
    return f"raw/{safe_name(table)}"


def raw_file_name(table: str) -> str:
    """The data file of an exported table partition."""
    return f"{safe_name(table)}.csv.gz"


def checks(table: str) -> str:
    """Prefix of a table's check results."""
    return f"checks/{safe_name(table)}"


CHECK_RESULT_NAME = "result.json"
DATA_DOCS = "data_docs"


def check_result(table: str, partition_date: date) -> str:
    return partition_file(checks(table), partition_date, CHECK_RESULT_NAME)


# -- models ------------------------------------------------------------------------------------------


def registry(model: str) -> str:
    return f"registry/{safe_name(model)}"


def registry_version(model: str, version: str) -> str:
    return f"{registry(model)}/{safe_name(version)}"


def registry_aliases(model: str) -> str:
    return f"{registry(model)}/aliases.json"


# -- outputs ----------------------------------------------------------------------------------------

CALL_LISTS = "call_lists"


def call_lists() -> str:
    return CALL_LISTS


def call_list_latest_dir() -> str:
    return f"{CALL_LISTS}/latest"


def call_list_latest_pointer() -> str:
    return f"{CALL_LISTS}/latest.json"


def call_list_latest_file(version: str, name: str) -> str:
    """An immutable, content-addressed copy of the latest list's file (the pointer names it)."""
    return f"{call_list_latest_dir()}/{safe_name(version)}/{safe_name(name)}"


def serving_context(model: str, version: str) -> str:
    return f"{CALL_LISTS}/serving/{safe_name(model)}-{safe_name(version)}.json"


def forecasts(namespace: str | None = None) -> str:
    """The company's forecasts, or a bring-your-own namespace that can never overwrite them."""
    return "forecasts" if namespace is None else f"forecasts/byo/{safe_name(namespace)}"


def monitoring(model: str) -> str:
    return f"monitoring/{safe_name(model)}"


def monitoring_reference(model: str, version: str) -> str:
    """The reference distributions a model version is monitored against (built once per version)."""
    return f"{monitoring(model)}/reference/{safe_name(version)}.json"


def analytics(name: str) -> str:
    return f"analytics/{safe_name(name)}"


def probe(name: str) -> str:
    """A throwaway object a writer puts and removes to prove the lake is writable."""
    return f"_probe/{safe_name(name)}"


def state(name: str) -> str:
    """A small status document (e.g. the company state shown in the UI)."""
    return f"state/{safe_name(name)}.json"
