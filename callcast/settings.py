"""One typed settings object for the whole system, read from ``CALLCAST_*`` environment variables or ``.env``.

Nothing is read at import time: call :func:`get_settings` when a value is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_home() -> Path:
    return PROJECT_ROOT / ".callcast"


class ExportSettings(BaseSettings):
    """How the daily export copies tables; nested under ``CALLCAST_EXPORT__*``."""

    model_config = SettingsConfigDict(extra="ignore")

    tables: list[str] | None = Field(
        default=None, description="Tables to export; default: every table in the database catalog."
    )
    exclude: list[str] = Field(
        default=["demo_state"], description="Catalog tables never exported by default (bookkeeping tables)."
    )
    incremental: dict[str, str] = Field(
        default={"sales": "sale_id", "campaign_contacts": "updated_at"},
        description="Append-only tables exported by watermark: table -> watermark column. Others are snapshots.",
    )
    gzip_level: int = Field(default=1, ge=1, le=9, description="gzip level of the CSV files (1 = fastest).")
    fetch_rows: int = Field(
        default=50_000, ge=1_000, description="Rows per fetch on the generic streaming path."
    )
    postgres_client: Literal["auto", "psql", "driver"] = Field(
        default="auto",
        description="PostgreSQL COPY through psql (C speed, same snapshot) when on PATH, or through the driver.",
    )
    retries: int = Field(default=3, ge=0, description="Retries of a table export on transient errors.")
    retry_delay_seconds: float = Field(default=2.0, ge=0, description="First retry delay; doubles each time.")


class Settings(BaseSettings):
    """callcast configuration. Defaults are the embedded ones (SQLite + a local lake under ``.callcast/``)."""

    model_config = SettingsConfigDict(
        env_prefix="CALLCAST_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(default_factory=_default_home, description="State directory (database, lake, MLflow).")
    database_url: SecretStr | None = Field(
        default=None, description="Source database URL; default sqlite:///<home>/callcast.db."
    )
    lake_url: str | None = Field(
        default=None, description="Lake: a local directory or az://<container>/<prefix>; default <home>/lake."
    )
    azure_connection_string: SecretStr | None = Field(
        default=None, description="Azure Blob connection string (secret) for an az:// lake."
    )
    azure_credentials_block: str | None = Field(
        default=None,
        description="Name of a saved AzureBlobStorageCredentials Prefect block (instead of a string).",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default sqlite:///<home>/mlflow.db."
    )
    dask_address: str | None = Field(
        default=None, description="Dask scheduler address; default: a local cluster."
    )
    dask_workers: int = Field(default=2, ge=1, description="Workers of the local Dask cluster.")
    seed: int = Field(default=20260101, description="Seed of the demo data generator.")
    export: ExportSettings = Field(default_factory=ExportSettings)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def resolved_database_url(self) -> str:
        """The source database URL (secret: never log it; use :func:`callcast.database.masked_url`)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.home / 'callcast.db'}"

    def resolved_lake_url(self) -> str:
        return self.lake_url or str(self.home / "lake")

    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
