"""The lake's commit protocol, above any storage backend.

A partition is ``<prefix>/dt=YYYY-MM-DD/`` holding data files and ``_manifest.json``; every key comes from
:mod:`callcast.catalog`. The commit, under the partition's lease (one writer at a time):

1. each data file is uploaded under a new, content-addressed name (``customers.<sha256[:16]>.csv.gz``),
   so no published file is ever overwritten with other bytes;
2. ``_manifest.json`` — naming those files with their size and SHA-256 — is replaced in one atomic step
   (``os.replace`` locally, a single blob put on Azure). **That replacement is the commit**: before it
   readers see the previous complete version, after it the new one, never a mix and never nothing;
3. files the new manifest no longer names (the previous version, a crashed writer's leftovers) are removed.

Readers resolve a file through the manifest (:meth:`Lake.data_file`) and verify its size and SHA-256
(:meth:`Lake.fetch`); a mismatch is refused with a :class:`~callcast.errors.StorageError`. A partition
without a manifest does not exist for readers.

``CALLCAST_FAULT_POINT=<name>`` kills the process at a named step (crash tests): ``lake.lease_acquired``,
``lake.data_uploaded``, ``lake.before_manifest``, ``storage.before_replace:_manifest.json`` (local disk),
``lake.after_manifest``, ``lake.cleanup``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from callcast import catalog
from callcast.errors import PartitionNotFoundError, StorageError
from callcast.storage import LocalStorage, Storage, fault_point

# Thin aliases kept for callers that predate the catalog.
MANIFEST_NAME = catalog.MANIFEST_NAME
partition_key = catalog.partition

_PARTITION_RE = catalog.partition_pattern(MANIFEST_NAME)
DEFAULT_LOCK_WAIT_SECONDS = 30.0
LEASE_TTL_SECONDS = 60.0


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


def versioned_name(name: str, sha256: str) -> str:
    """``customers.csv.gz`` + hash → ``customers.<sha256[:16]>.csv.gz`` (the stored, immutable name)."""
    stem, dot, suffix = name.partition(".")
    if not stem:  # ".hidden" style names
        return f"{name}.{sha256[:16]}"
    return f"{stem}.{sha256[:16]}{dot}{suffix}"


# Files already verified in this process: (device, inode, size, mtime_ns) -> sha256.
_VERIFIED: dict[tuple[int, int, int, int], str] = {}
_VERIFIED_LOCK = threading.Lock()


class Lake:
    """Committed partitions and small JSON documents on a :class:`~callcast.storage.Storage`."""

    def __init__(
        self,
        storage: Storage,
        *,
        lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
        lease_ttl_seconds: float = LEASE_TTL_SECONDS,
    ) -> None:
        self.storage = storage
        self.lock_wait_seconds = lock_wait_seconds
        self.lease_ttl_seconds = lease_ttl_seconds

    # -- locking -----------------------------------------------------------------------------------

    def lease(self, prefix: str, partition_date: date | None = None, owner: str = "callcast"):
        """Hold the lease of one partition (or of the whole dataset when ``partition_date`` is None).

        A second writer waits up to ``lock_wait_seconds`` and then fails with a message naming the holder.
        Use as a context manager; pass it to :meth:`commit_partition` as ``lease=``.
        """
        lease = self.storage.lease(
            catalog.lease(prefix, partition_date), owner, self.lock_wait_seconds, self.lease_ttl_seconds
        )
        if getattr(lease, "took_over", None):
            from callcast.runtime import get_logger

            get_logger().warning(
                "Took over the stale lease of %s from %s (its writer died).",
                catalog.partition(prefix, partition_date) if partition_date else prefix,
                lease.took_over,
            )
        return lease

    # -- writing -----------------------------------------------------------------------------------

    def commit_partition(
        self,
        prefix: str,
        partition_date: date,
        files: Mapping[str, Path],
        manifest: Mapping[str, Any],
        file_meta: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        lease: Any = None,
    ) -> dict[str, Any]:
        """Publish ``files`` (logical name → local path) as ``<prefix>/dt=<date>/``; returns the manifest.

        ``file_meta`` may carry precomputed ``rows``/``bytes``/``sha256`` per file name (the exporter hashes
        while it writes); anything missing is computed here. ``lease`` is a lease the caller already holds
        on this partition (or on the whole dataset); without it the commit takes the partition's own.
        """
        if lease is not None:
            return self._commit(prefix, partition_date, files, manifest, file_meta, lease)
        with self.lease(prefix, partition_date, owner=str(manifest.get("table") or prefix)) as held:
            return self._commit(prefix, partition_date, files, manifest, file_meta, held)

    def _commit(self, prefix, partition_date, files, manifest, file_meta, lease) -> dict[str, Any]:
        fault_point("lake.lease_acquired")
        entries = []
        for name, path in files.items():
            meta = dict((file_meta or {}).get(name, {}))
            if "bytes" not in meta or "sha256" not in meta:
                meta["bytes"], meta["sha256"] = file_digest(Path(path))
            stored = versioned_name(name, meta["sha256"])
            key = catalog.partition_file(prefix, partition_date, stored)
            if not self._same_object(key, meta["bytes"], meta["sha256"]):
                self.storage.put_file(Path(path), key)
            fault_point("lake.data_uploaded")
            entries.append(
                {
                    "name": stored,
                    "logical_name": name,
                    "rows": meta.get("rows"),
                    "bytes": meta["bytes"],
                    "sha256": meta["sha256"],
                }
            )

        document = dict(manifest)
        document["partition_date"] = partition_date.isoformat()
        document["files"] = entries
        document.setdefault("bytes", sum(e["bytes"] for e in entries))
        if len(entries) == 1:
            document.setdefault("sha256", entries[0]["sha256"])
        document.setdefault("finished_at", utc_now_iso())
        document["commit_id"] = uuid.uuid4().hex

        fault_point("lake.before_manifest")
        lease.check()  # never publish after losing the lease to another writer
        self.storage.put_bytes(catalog.manifest(prefix, partition_date), _to_json(document))  # THE commit
        fault_point("lake.after_manifest")
        self._remove_unreferenced(prefix, partition_date, {e["name"] for e in entries})
        return document

    def _same_object(self, key: str, size: int, sha256: str) -> bool:
        """The content-addressed object is already stored intact (a rerun with identical output)."""
        if isinstance(self.storage, LocalStorage):
            path = self.storage.local_path(key)
            if not path.is_file() or path.stat().st_size != size:
                return False
            try:
                self.verify_file(path, {"bytes": size, "sha256": sha256}, self.storage.describe(key))
            except StorageError:
                return False  # damaged: upload it again
            return True
        return False

    def _remove_unreferenced(self, prefix: str, partition_date: date, keep: set[str]) -> None:
        """After a commit: delete what the manifest does not name (old versions, crashed writers' files)."""
        folder = catalog.partition(prefix, partition_date) + "/"
        first = True
        for key in self.storage.list(folder):
            name = key[len(folder) :]
            if name == MANIFEST_NAME or name in keep:
                continue
            self.storage.delete(key)
            if first:
                fault_point("lake.cleanup")
                first = False
        # Staged leftovers of the old protocol (before content-addressed names), if any.
        stem = catalog.partition(catalog.staging(prefix), partition_date) + "."
        for key in self.storage.list(catalog.staging(prefix) + "/"):
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
        base = prefix.strip("/") + "/"
        for key in self.storage.list(base):
            match = _PARTITION_RE.search("/" + key)
            if match and key.startswith(base + catalog.PARTITION_PREFIX):
                found.append(date.fromisoformat(match.group(1)))
        return sorted(found)

    def latest_partition(self, prefix: str, on_or_before: date | None = None) -> date | None:
        dates = [d for d in self.partitions(prefix) if on_or_before is None or d <= on_or_before]
        return dates[-1] if dates else None

    def has_partition(self, prefix: str, partition_date: date) -> bool:
        return self.storage.exists(catalog.manifest(prefix, partition_date))

    def read_manifest(self, prefix: str, partition_date: date) -> dict[str, Any]:
        key = catalog.manifest(prefix, partition_date)
        if not self.storage.exists(key):
            raise PartitionNotFoundError(
                f"No committed partition {catalog.partition(prefix, partition_date)} in "
                f"{self.storage.describe()}. Run the export (or the producing flow) for that date first."
            )
        return self.read_json(key)

    @staticmethod
    def file_entry(manifest: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
        """The manifest's entry for a file, by its logical name (``customers.csv.gz``) or stored name."""
        files = list(manifest.get("files") or [])
        if name is None:
            if len(files) != 1:
                raise StorageError(
                    f"Partition {manifest.get('table')}/{manifest.get('partition_date')} holds "
                    f"{len(files)} files; name the one to read."
                )
            return files[0]
        for entry in files:
            if entry.get("logical_name", entry.get("name")) == name:
                return entry
        for entry in files:
            if entry.get("name") == name:
                return entry
        known = ", ".join(e.get("logical_name", e.get("name", "?")) for e in files) or "none"
        raise StorageError(
            f"The manifest of {catalog.partition_label(manifest.get('table', '?'), manifest.get('partition_date'))} names no file "
            f"{name!r} (it names: {known})."
        )

    def data_file(self, prefix: str, partition_date: date, name: str | None = None) -> str:
        """The storage key of a committed file, resolved through the partition's manifest."""
        entry = self.file_entry(self.read_manifest(prefix, partition_date), name)
        return catalog.partition_file(prefix, partition_date, entry["name"])

    def fetch(self, prefix: str, partition_date: date, name: str, dest_dir: Path) -> Path:
        """A verified local copy (or, on local disk, a hard link) of one file of a committed partition.

        The file is resolved through the manifest and checked against its size and SHA-256; a mismatch is
        refused. If a concurrent commit replaced the partition meanwhile, the new version is read.
        """
        last_error: StorageError | None = None
        for _attempt in range(4):
            manifest = self.read_manifest(prefix, partition_date)
            entry = self.file_entry(manifest, name)
            key = catalog.partition_file(prefix, partition_date, entry["name"])
            try:
                if isinstance(self.storage, LocalStorage):
                    path = self._pin_local(self.storage.local_path(key), Path(dest_dir), entry["name"])
                else:
                    path = self.storage.get_file(key, Path(dest_dir) / entry["name"])
            except (FileNotFoundError, StorageError) as exc:
                # Gone: a newer commit removed it after we read the manifest? Then read the new version.
                if self.read_manifest(prefix, partition_date).get("commit_id") != manifest.get("commit_id"):
                    continue
                last_error = StorageError(
                    f"{self.storage.describe(key)} is named by its partition's manifest but cannot be read "
                    f"({exc}). Rerun the job that produced {catalog.partition(prefix, partition_date)}."
                )
                break
            self.verify_file(path, entry, self.storage.describe(key))
            return path
        raise last_error or StorageError(
            f"{catalog.partition(prefix, partition_date)} kept changing while being read; try again."
        )

    @staticmethod
    def _pin_local(source: Path, dest_dir: Path, name: str) -> Path:
        """A hard link in ``dest_dir`` (so a later cleanup cannot pull the file away mid-read), else the file."""
        if not source.is_file():
            raise FileNotFoundError(str(source))
        dest_dir.mkdir(parents=True, exist_ok=True)
        link = dest_dir / name
        try:
            link.unlink(missing_ok=True)
            os.link(source, link)
            return link
        except OSError:
            return source

    @staticmethod
    def verify_file(path: Path, entry: Mapping[str, Any], where: str) -> None:
        """Refuse a file whose size or SHA-256 differs from its manifest entry."""
        stat = os.stat(path)
        cache_key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with _VERIFIED_LOCK:
            cached = _VERIFIED.get(cache_key)
        expected_size, expected_sha = entry.get("bytes"), entry.get("sha256")
        if expected_size is not None and stat.st_size != expected_size:
            raise StorageError(
                f"{where} has {stat.st_size} bytes but its manifest records {expected_size}: the file is "
                "damaged or was replaced outside callcast. Refusing to read it; rerun the job that produced "
                "this partition."
            )
        if expected_sha is None:
            return
        actual = cached or file_digest(path)[1]
        if actual != expected_sha:
            raise StorageError(
                f"{where} has SHA-256 {actual[:12]}… but its manifest records {expected_sha[:12]}…: the file "
                "is damaged or was replaced outside callcast. Refusing to read it; rerun the job that "
                "produced this partition."
            )
        with _VERIFIED_LOCK:
            if len(_VERIFIED) > 4096:
                _VERIFIED.clear()
            _VERIFIED[cache_key] = actual

    def verify_partition(self, prefix: str, partition_date: date) -> list[str]:
        """Problems of a committed partition (empty list = every file matches its manifest)."""
        problems = []
        try:
            manifest = self.read_manifest(prefix, partition_date)
        except StorageError as exc:
            return [str(exc)]
        with self.scratch_dir() as scratch:
            for entry in manifest.get("files") or []:
                try:
                    self.fetch(prefix, partition_date, entry.get("logical_name", entry["name"]), scratch)
                except StorageError as exc:
                    problems.append(str(exc))
        return problems

    def read_bytes(self, prefix: str, partition_date: date, name: str) -> bytes:
        """A committed file's bytes, verified against the manifest."""
        with self.scratch_dir() as scratch:
            return self.fetch(prefix, partition_date, name, scratch).read_bytes()

    def read_csv(self, prefix: str, partition_date: date, name: str, **pandas_kwargs: Any):
        """A committed CSV (optionally gzip) file as a DataFrame, typed from the manifest's columns.

        The manifest's ``columns`` describe the partition's data file; another file of the partition (a report
        beside the forecasts, say) is read untyped, with the same missing-value rules.
        """
        from callcast.csvio import pandas_read_options

        manifest = self.read_manifest(prefix, partition_date)
        with self.scratch_dir() as scratch:
            path = self.fetch(prefix, partition_date, name, scratch)
            import pandas as pd

            described = manifest.get("columns") or []
            header = list(
                pd.read_csv(path, nrows=0).columns
            )  # stored names keep the extension: gzip inferred
            options = pandas_read_options(described if [c["name"] for c in described] == header else [])
            options.update(pandas_kwargs)
            return pd.read_csv(path, **options)

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A temporary local directory, removed afterwards (also on failure)."""
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

    settings = settings or get_settings()
    wait = getattr(settings, "lake_lock_wait_seconds", DEFAULT_LOCK_WAIT_SECONDS)
    return Lake(open_storage(settings), lock_wait_seconds=wait)
