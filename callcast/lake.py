"""The lake's layout and commit protocol, above any storage backend.

A partition is ``<prefix>/dt=YYYY-MM-DD/`` holding data files and ``_manifest.json``. Files are uploaded
under ``<prefix>/_staging/`` first, then moved into place, and the manifest is written last: a partition
without a manifest does not exist for readers. A rerun of the same date replaces the partition.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from callcast.errors import PartitionNotFoundError, StorageError
from callcast.storage import LocalStorage, Storage

MANIFEST_NAME = "_manifest.json"
STAGING = "_staging"
_PARTITION_RE = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/" + re.escape(MANIFEST_NAME) + "$")


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def file_digest(path: Path) -> tuple[int, str]:
    """Byte size and SHA-256 of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def partition_key(prefix: str, partition_date: date) -> str:
    return f"{prefix.strip('/')}/dt={partition_date.isoformat()}"


class Lake:
    """Committed partitions and small JSON documents on a :class:`~callcast.storage.Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- writing -----------------------------------------------------------------------------------

    def commit_partition(
        self,
        prefix: str,
        partition_date: date,
        files: Mapping[str, Path],
        manifest: Mapping[str, Any],
        file_meta: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Publish ``files`` as ``<prefix>/dt=<date>/`` with a manifest written last; returns the manifest.

        ``file_meta`` may carry precomputed ``rows``/``bytes``/``sha256`` per file name (the exporter hashes
        while it writes); anything missing is computed here.
        """
        target = partition_key(prefix, partition_date)
        staging = f"{prefix.strip('/')}/{STAGING}/dt={partition_date.isoformat()}.{uuid.uuid4().hex[:12]}"
        entries = []
        for name, path in files.items():
            meta = dict((file_meta or {}).get(name, {}))
            if "bytes" not in meta or "sha256" not in meta:
                meta["bytes"], meta["sha256"] = file_digest(Path(path))
            entries.append(
                {"name": name, "rows": meta.get("rows"), "bytes": meta["bytes"], "sha256": meta["sha256"]}
            )
            self.storage.put_file(Path(path), f"{staging}/{name}")

        document = dict(manifest)
        document["partition_date"] = partition_date.isoformat()
        document["files"] = entries
        document.setdefault("bytes", sum(e["bytes"] for e in entries))
        if len(entries) == 1:
            document.setdefault("sha256", entries[0]["sha256"])
        document.setdefault("finished_at", utc_now_iso())

        # Commit: hide the old partition, swap files in, then make the new one visible.
        self.storage.delete(f"{target}/{MANIFEST_NAME}")
        new_names = set(files)
        for key in self.storage.list(target + "/"):
            if key.rsplit("/", 1)[-1] not in new_names:
                self.storage.delete(key)
        for name in files:
            self.storage.move(f"{staging}/{name}", f"{target}/{name}")
        self.storage.put_bytes(f"{target}/{MANIFEST_NAME}", _to_json(document))
        self._clear_staging(prefix, partition_date)
        return document

    def _clear_staging(self, prefix: str, partition_date: date) -> None:
        """Remove staged leftovers of this date (including those of crashed runs)."""
        stem = f"{prefix.strip('/')}/{STAGING}/dt={partition_date.isoformat()}."
        for key in self.storage.list(f"{prefix.strip('/')}/{STAGING}/"):
            if key.startswith(stem):
                self.storage.delete(key)

    def write_json(self, key: str, document: Any) -> None:
        """Write a small JSON document atomically (one object put)."""
        self.storage.put_bytes(key, _to_json(document))

    def read_json(self, key: str) -> Any:
        try:
            return json.loads(self.storage.get_bytes(key))
        except json.JSONDecodeError as exc:
            raise StorageError(f"{self.storage.describe(key)} is not valid JSON ({exc}).") from exc

    # -- reading -----------------------------------------------------------------------------------

    def partitions(self, prefix: str) -> list[date]:
        """Committed partition dates under ``prefix``, oldest first."""
        found = []
        for key in self.storage.list(prefix.strip("/") + "/"):
            match = _PARTITION_RE.search("/" + key)
            if match and key.startswith(prefix.strip("/") + "/dt="):
                found.append(date.fromisoformat(match.group(1)))
        return sorted(found)

    def latest_partition(self, prefix: str, on_or_before: date | None = None) -> date | None:
        dates = [d for d in self.partitions(prefix) if on_or_before is None or d <= on_or_before]
        return dates[-1] if dates else None

    def has_partition(self, prefix: str, partition_date: date) -> bool:
        return self.storage.exists(f"{partition_key(prefix, partition_date)}/{MANIFEST_NAME}")

    def read_manifest(self, prefix: str, partition_date: date) -> dict[str, Any]:
        key = f"{partition_key(prefix, partition_date)}/{MANIFEST_NAME}"
        if not self.storage.exists(key):
            raise PartitionNotFoundError(
                f"No committed partition {prefix}/dt={partition_date.isoformat()} in {self.storage.describe()}. "
                "Run the export (or the producing flow) for that date first."
            )
        return self.read_json(key)

    def fetch(self, prefix: str, partition_date: date, name: str, dest_dir: Path) -> Path:
        """Download one file of a committed partition into ``dest_dir``."""
        self.read_manifest(prefix, partition_date)  # raises if not committed
        key = f"{partition_key(prefix, partition_date)}/{name}"
        if isinstance(self.storage, LocalStorage):
            return self.storage.local_path(key)
        return self.storage.get_file(key, Path(dest_dir) / name)

    def read_csv(self, prefix: str, partition_date: date, name: str, **pandas_kwargs: Any):
        """A committed CSV (optionally gzip) file as a DataFrame, typed from the manifest's columns."""
        from callcast.csvio import pandas_read_options

        manifest = self.read_manifest(prefix, partition_date)
        options = pandas_read_options(manifest.get("columns") or [])
        options.update(pandas_kwargs)
        with self.scratch_dir() as scratch:
            path = self.fetch(prefix, partition_date, name, scratch)
            import pandas as pd

            return pd.read_csv(path, **options)

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A temporary local directory, removed afterwards."""
        path = Path(tempfile.mkdtemp(prefix="callcast-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def describe(self, key: str = "") -> str:
        return self.storage.describe(key)


def _to_json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False, default=str) + "\n").encode()


def open_lake(settings=None) -> Lake:
    """The lake named by the settings (read now)."""
    from callcast.settings import get_settings
    from callcast.storage import open_storage

    return Lake(open_storage(settings or get_settings()))
