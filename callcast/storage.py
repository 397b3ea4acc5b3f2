"""Storage: one small interface over the lake, with a local-directory and an Azure Blob backend.

Keys are POSIX-style relative paths (``raw/sales/dt=2024-01-01/sales.csv.gz``). Everything above this
module is storage-agnostic.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from callcast.errors import ConfigurationError, StorageError

if TYPE_CHECKING:
    from callcast.settings import Settings

T = TypeVar("T")


FAULT_ENV = "CALLCAST_FAULT_POINT"

# OSErrors that no retry can fix: the message names the path and the run fails at once.
PERMANENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.ENOTDIR}
)


def fault_point(name: str) -> None:
    """Test hook: ``CALLCAST_FAULT_POINT=<name>`` kills this process with SIGKILL when it reaches ``name``.

    Used by the crash tests and ``benchmarks/fault_injection.py`` to stop a real process at a chosen step of
    a commit (no cleanup handler runs, exactly like ``kill -9`` or a lost machine).
    """
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def is_permanent_oserror(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in PERMANENT_ERRNOS


def explain_oserror(exc: OSError, path: object, action: str = "write") -> StorageError:
    """A one-line message for an OSError that names the path (and does not invite a retry when permanent)."""
    reason = exc.strerror or type(exc).__name__
    hint = {
        errno.ENOSPC: "Free space on that disk or point the lake/temporary folder elsewhere (TMPDIR).",
        errno.EDQUOT: "The disk quota is exhausted: free space or raise the quota.",
        errno.EROFS: "The file system is read-only: point CALLCAST_LAKE_URL at a writable folder.",
        errno.EACCES: "Permission denied: fix the folder's permissions or point CALLCAST_LAKE_URL elsewhere.",
        errno.EPERM: "Operation not permitted: fix the folder's permissions or point CALLCAST_LAKE_URL elsewhere.",
    }.get(exc.errno, "Check the disk and the folder's permissions.")
    error = StorageError(f"Cannot {action} {path}: {reason}. {hint}")
    error.permanent = is_permanent_oserror(exc)  # type: ignore[attr-defined]
    return error


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


class LeaseBusyError(StorageError):
    """Another writer holds the partition's lease and did not release it in time."""


class LeaseLostError(StorageError):
    """This writer's lease was lost before its commit (expired or taken over): nothing was published."""


def _lease_owner(owner: str, ttl_seconds: float) -> dict[str, object]:
    return {
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "token": uuid.uuid4().hex,
        "acquired_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "expires_at": datetime.fromtimestamp(time.time() + ttl_seconds, UTC).isoformat(timespec="seconds"),
    }


def _describe_holder(info: dict | None) -> str:
    if not info:
        return "another writer"
    return (
        f"{info.get('owner', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"since {info.get('acquired_at', '?')})"
    )


class LocalLease:
    """A lease on a local lake key: a lock file created atomically (``link`` of a private file, i.e. O_EXCL
    semantics) whose holder keeps an ``flock`` on it for as long as it lives.

    The file records owner, host, pid, token and expiry (for people and messages). The kernel releases the
    ``flock`` when the holder dies however it dies (SIGKILL included), so a lease whose file can be
    ``flock``-ed by someone else is stale and is taken over in place — never two holders at once.
    """

    def __init__(self, path: Path, owner: str, wait_seconds: float, ttl_seconds: float) -> None:
        import fcntl

        self.path = path
        self.info = _lease_owner(owner, ttl_seconds)
        self.took_over: dict | None = None
        self._fd: int | None = None
        deadline = time.monotonic() + wait_seconds
        path.parent.mkdir(parents=True, exist_ok=True)
        delay = 0.005
        while True:
            fd = self._try_create(fcntl)
            if fd is None:
                fd = self._try_take_over(fcntl)
            if fd is not None:
                self._fd = fd
                return
            if time.monotonic() >= deadline:
                raise LeaseBusyError(
                    f"{path} is held by {_describe_holder(self._read())}; waited {wait_seconds:g}s. "
                    "Another run is writing this partition: wait for it to finish, or raise "
                    "CALLCAST_LAKE_LOCK_WAIT_SECONDS."
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _payload(self) -> bytes:
        return (json.dumps(self.info) + "\n").encode()

    def _try_create(self, fcntl) -> int | None:
        private = self.path.with_name(f".{self.path.name}.{self.info['token']}.tmp")
        fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held before the file becomes visible
            os.write(fd, self._payload())
            try:
                os.link(private, self.path)  # atomic: fails if a lease file exists
            except FileExistsError:
                os.close(fd)
                return None
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        finally:
            private.unlink(missing_ok=True)

    def _try_take_over(self, fcntl) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None  # its holder is alive
        try:
            if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                os.close(fd)  # released (unlinked) meanwhile: try again from the start
                return None
        except FileNotFoundError:
            os.close(fd)
            return None
        # The holder died without releasing: the file is ours now (we hold its flock).
        self.took_over = self._read_fd(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._payload(), 0)
        return fd

    @staticmethod
    def _read_fd(fd: int) -> dict | None:
        try:
            return json.loads(os.pread(fd, 65536, 0) or b"null")
        except (OSError, ValueError):
            return None

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_bytes() or b"null")
        except (OSError, ValueError):
            return None

    def check(self) -> None:
        """Raise :class:`LeaseLostError` unless this process still holds the lease."""
        try:
            held = self._fd is not None and os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            held = False
        if not held:
            raise LeaseLostError(f"Lost the lease {self.path} before committing; nothing was published.")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LocalLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@runtime_checkable
class Storage(Protocol):
    """What the lake needs from a storage backend."""

    def put_file(self, local_path: Path, key: str) -> None: ...
    def get_file(self, key: str, local_path: Path) -> Path: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def move(self, src: str, dst: str) -> None: ...
    def describe(self, key: str = "") -> str: ...
    def lease(self, key: str, owner: str, wait_seconds: float, ttl_seconds: float) -> Any: ...


def _clean_key(key: str) -> str:
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise StorageError(f"Refusing storage key {key!r}: '..' is not allowed in lake keys.")
    return "/".join(parts)


class LocalStorage:
    """A lake in a local directory. Writes go to a temporary file, then ``os.replace`` (atomic)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self._mode = 0o666 & ~_umask()  # lake files follow the umask (mkstemp alone would make them 0600)

    def _path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def _ensure_dir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error = StorageError(
                f"Cannot create lake folder {path}: {exc.strerror}. "
                "Check CALLCAST_LAKE_URL points to a writable directory."
            )
            error.permanent = True  # type: ignore[attr-defined]
            raise error from exc

    def _write_atomically(self, key: str, writer) -> None:
        target = self._path(key)
        self._ensure_dir(target.parent)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            error = StorageError(
                f"Cannot write to lake folder {target.parent}: {exc.strerror}. "
                "Check CALLCAST_LAKE_URL points to a writable directory."
            )
            error.permanent = is_permanent_oserror(exc)  # type: ignore[attr-defined]
            raise error from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), self._mode)
                writer(handle)
            fault_point(f"storage.before_replace:{target.name}")
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.filename is None and is_permanent_oserror(exc):
                raise explain_oserror(exc, target) from exc
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, local_path: Path, key: str) -> None:
        def copy(handle) -> None:
            with open(local_path, "rb") as source:
                shutil.copyfileobj(source, handle, 1024 * 1024)

        self._write_atomically(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda handle: handle.write(data))

    def get_file(self, key: str, local_path: Path) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise StorageError(f"Lake object {self.describe(key)} does not exist.")
        local_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local_path)
        return local_path

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"Lake object {self.describe(key)} does not exist.")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def move(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)
        self._ensure_dir(target.parent)
        os.replace(source, target)
        self._prune(source.parent)

    def _prune(self, folder: Path) -> None:
        """Remove empty folders left behind, up to the lake root (object stores have no folders)."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def lease(self, key: str, owner: str, wait_seconds: float, ttl_seconds: float) -> LocalLease:
        """Hold ``key`` as a lock file (see :class:`LocalLease`); waits up to ``wait_seconds``."""
        path = self._path(key)
        self._ensure_dir(path.parent)
        return LocalLease(path, owner, wait_seconds, ttl_seconds)

    def local_path(self, key: str) -> Path:
        """The file behind a key (local backend only: lets readers skip a copy)."""
        return self._path(key)

    def describe(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    from prefect.utilities.asyncutils import run_coro_as_sync

    return run_coro_as_sync(coro)  # type: ignore[return-value]


class AzureBlobStorage:
    """A lake in an Azure Blob container, through prefect-azure's ``AzureBlobStorageContainer`` block.

    Uploads overwrite (daily reruns rewrite the same keys); a "move" is a server-side copy then a delete.
    """

    def __init__(self, container: Any) -> None:
        self.container = container  # prefect_azure.blob_storage.AzureBlobStorageContainer

    @classmethod
    def from_settings(
        cls, settings: Settings, container_name: str, base_folder: str | None
    ) -> AzureBlobStorage:
        from prefect_azure import AzureBlobStorageCredentials
        from prefect_azure.blob_storage import AzureBlobStorageContainer

        if settings.azure_credentials_block:
            credentials = AzureBlobStorageCredentials.load(settings.azure_credentials_block)
        elif settings.azure_connection_string is not None:
            credentials = AzureBlobStorageCredentials(connection_string=settings.azure_connection_string)
        else:
            raise ConfigurationError(
                "The lake is an Azure container (CALLCAST_LAKE_URL=az://...) but no credentials are set: "
                "set CALLCAST_AZURE_CONNECTION_STRING or CALLCAST_AZURE_CREDENTIALS_BLOCK."
            )
        container = AzureBlobStorageContainer(
            container_name=container_name, credentials=credentials, base_folder=base_folder or None
        )
        return cls(container)

    def _full(self, key: str) -> str:
        return self.container._get_path_relative_to_base_folder(_clean_key(key))

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return StorageError(
            f"Azure Blob {action} failed for {self.describe(key)}: {reason}. "
            "Check that the container exists and the credentials allow it."
        )

    def put_file(self, local_path: Path, key: str) -> None:
        try:
            self.container.upload_from_path(str(local_path), _clean_key(key), overwrite=True, _sync=True)
        except Exception as exc:  # azure raises many types; all mean the write failed
            raise self._fail("upload", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.container.write_path(_clean_key(key), data, _sync=True)
        except Exception as exc:
            raise self._fail("upload", key, exc) from exc

    def get_file(self, key: str, local_path: Path) -> Path:
        local_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.container.download_object_to_path(_clean_key(key), str(local_path), _sync=True)
        except Exception as exc:
            raise self._fail("download", key, exc) from exc
        return local_path

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.container.read_path(_clean_key(key), _sync=True)
        except Exception as exc:
            raise self._fail("download", key, exc) from exc

    def exists(self, key: str) -> bool:
        async def check() -> bool:
            async with self.container.credentials as credentials:
                async with credentials.get_blob_client(
                    self.container.container_name, self._full(key)
                ) as blob:
                    return await blob.exists()

        return _run_sync(check())

    def list(self, prefix: str) -> list[str]:
        base = self.container.base_folder.strip("/") + "/" if self.container.base_folder else ""
        wanted = base + _clean_key(prefix)

        async def names() -> list[str]:
            async with self.container.credentials as credentials:
                client = credentials.get_container_client(self.container.container_name)
                async with client:
                    return [blob.name async for blob in client.list_blobs(name_starts_with=wanted)]

        try:
            found = _run_sync(names())
        except Exception as exc:
            raise self._fail("listing", prefix, exc) from exc
        return sorted(name[len(base) :] for name in found)

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        async def remove() -> None:
            async with self.container.credentials as credentials:
                async with credentials.get_blob_client(
                    self.container.container_name, self._full(key)
                ) as blob:
                    try:
                        await blob.delete_blob()
                    except ResourceNotFoundError:
                        pass

        _run_sync(remove())

    def move(self, src: str, dst: str) -> None:
        import asyncio

        async def copy() -> None:
            async with self.container.credentials as credentials:
                name = self.container.container_name
                async with credentials.get_blob_client(name, self._full(src)) as source:
                    async with credentials.get_blob_client(name, self._full(dst)) as target:
                        copy_props = await target.start_copy_from_url(source.url, requires_sync=False)
                        status = copy_props.get("copy_status")
                        while status == "pending":
                            await asyncio.sleep(0.2)
                            status = (await target.get_blob_properties()).copy.status
                        if status != "success":
                            raise StorageError(f"Azure copy of {src} to {dst} ended with status {status}.")
                    await source.delete_blob()

        try:
            _run_sync(copy())
        except StorageError:
            raise
        except Exception as exc:
            raise self._fail("move", src, exc) from exc

    def describe(self, key: str = "") -> str:
        return f"az://{self.container.container_name}/{self._full(key)}"

    def _sync_blob_client(self, key: str):
        """A synchronous azure-storage-blob client for one blob (blob leases need a client that stays open)."""
        from azure.storage.blob import BlobClient

        credentials = self.container.credentials
        if credentials.connection_string is not None:
            secret = credentials.connection_string
            text = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
            return BlobClient.from_connection_string(text, self.container.container_name, self._full(key))
        from azure.identity import DefaultAzureCredential

        return BlobClient(
            account_url=credentials.account_url,
            container_name=self.container.container_name,
            blob_name=self._full(key),
            credential=DefaultAzureCredential(),
        )

    def lease(self, key: str, owner: str, wait_seconds: float, ttl_seconds: float) -> AzureLease:
        """Hold ``key`` with an Azure blob lease (renewed in the background); waits up to ``wait_seconds``."""
        return AzureLease(self, key, owner, wait_seconds, ttl_seconds)


class AzureLease:
    """An Azure blob lease on a small lock blob: exclusive by the service, expires by itself if the holder
    dies (``ttl_seconds``, 15–60 s), renewed by a background thread while held."""

    def __init__(
        self, storage: AzureBlobStorage, key: str, owner: str, wait_seconds: float, ttl_seconds: float
    ) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        self.key = key
        self.where = storage.describe(key)
        self.info = _lease_owner(owner, ttl_seconds)
        self.took_over = None
        self._client = storage._sync_blob_client(key)
        self._lease = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        duration = int(min(60, max(15, ttl_seconds)))
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            try:
                self._client.upload_blob(b"", overwrite=False)
            except (ResourceExistsError, HttpResponseError):
                pass  # exists (possibly leased by someone else)
            try:
                self._lease = self._client.acquire_lease(lease_duration=duration)
                break
            except HttpResponseError as exc:
                if getattr(exc, "status_code", None) not in (409, 412):
                    self._client.close()
                    raise storage._fail("lease", key, exc) from exc
            if time.monotonic() >= deadline:
                holder = None
                with contextlib.suppress(Exception):
                    holder = json.loads(self._client.get_blob_properties().metadata.get("holder", "null"))
                self._client.close()
                raise LeaseBusyError(
                    f"{self.where} is leased by {_describe_holder(holder)}; waited {wait_seconds:g}s. "
                    "Another run is writing this partition: wait for it to finish, or raise "
                    "CALLCAST_LAKE_LOCK_WAIT_SECONDS."
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        with contextlib.suppress(Exception):
            self._client.set_blob_metadata({"holder": json.dumps(self.info)}, lease=self._lease)
        self._renewer = threading.Thread(target=self._renew, args=(duration / 3,), daemon=True)
        self._renewer.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self._lease.renew()
            except Exception:
                self._lost.set()
                return

    def check(self) -> None:
        if self._lease is None or self._lost.is_set():
            raise LeaseLostError(f"Lost the lease {self.where} before committing; nothing was published.")
        try:
            self._lease.renew()
        except Exception as exc:
            raise LeaseLostError(
                f"Lost the lease {self.where} before committing ({type(exc).__name__}); nothing was published."
            ) from exc

    def release(self) -> None:
        self._stop.set()
        if self._lease is not None:
            with contextlib.suppress(Exception):
                self._lease.release()
            self._lease = None
        self._client.close()

    def __enter__(self) -> AzureLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_storage(settings: Settings) -> Storage:
    """The storage backend named by ``settings.lake_url`` (a directory, or ``az://container/prefix``)."""
    url = settings.resolved_lake_url()
    if url.startswith("az://"):
        rest = url[len("az://") :].strip("/")
        if not rest:
            raise ConfigurationError(
                "CALLCAST_LAKE_URL=az:// needs a container name: az://<container>/<prefix>."
            )
        container, _, base = rest.partition("/")
        return AzureBlobStorage.from_settings(settings, container, base or None)
    if "://" in url and not url.startswith("file://"):
        raise ConfigurationError(
            f"Unsupported lake URL scheme in {url!r}: use a local directory or az://<container>/<prefix>."
        )
    return LocalStorage(url.removeprefix("file://"))
