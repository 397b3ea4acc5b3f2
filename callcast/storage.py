"""Storage: one small interface over the lake, with a local-directory and an Azure Blob backend.

Keys are POSIX-style relative paths (``raw/sales/dt=2024-01-01/sales.csv.gz``). Everything above this
module is storage-agnostic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from callcast.errors import ConfigurationError, StorageError

if TYPE_CHECKING:
    from callcast.settings import Settings

T = TypeVar("T")


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


def _clean_key(key: str) -> str:
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise StorageError(f"Refusing storage key {key!r}: '..' is not allowed in lake keys.")
    return "/".join(parts)


class LocalStorage:
    """A lake in a local directory. Writes go to a temporary file, then ``os.replace`` (atomic)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def _ensure_dir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot create lake folder {path}: {exc.strerror}. "
                "Check CALLCAST_LAKE_URL points to a writable directory."
            ) from exc

    def _write_atomically(self, key: str, writer) -> None:
        target = self._path(key)
        self._ensure_dir(target.parent)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            raise StorageError(
                f"Cannot write to lake folder {target.parent}: {exc.strerror}. "
                "Check CALLCAST_LAKE_URL points to a writable directory."
            ) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                writer(handle)
            os.replace(tmp, target)
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
