"""One typed settings object for the whole system, read from ``CALLCAST_*`` environment variables or ``.env``.

Nothing is read at import time: call :func:`get_settings` when a value is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callcast.schema import CustomerSchema
from data_checks.config import ChecksConfig
from models.analytics.config import AnalyticsSettings
from models.forecasting.config import ForecastConfig
from models.monitoring.config import MonitoringConfig
from models.propensity.config import PropensityConfig

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
    lookback: dict[str, float] = Field(
        default={"sales": 5000, "campaign_contacts": 2},
        description="Late-row look-back per incremental table, in the watermark's unit (ids for an integer "
        "watermark, days for a date/timestamp one): rows at most this far behind the last exported watermark "
        "are picked up once (de-duplicated on the table's key).",
    )
    late_rows: Literal["include", "fail"] = Field(
        default="include",
        description="Late rows inside the look-back window: 'include' them in the new slice, or 'fail' the "
        "export reporting their count and oldest watermark. Rows later than the window always fail the export.",
    )
    retries: int = Field(default=3, ge=0, description="Retries of a table export on transient errors.")
    retry_delay_seconds: float = Field(default=2.0, ge=0, description="First retry delay; doubles each time.")


class ScoringSettings(BaseModel):
    """Who gets called and how the call list is cut; nested under ``CALLCAST_SCORING__*``."""

    capacity: int | None = Field(
        default=500, ge=1, description="Calls the team can make per day (list length)."
    )
    cooloff_days: int = Field(default=30, ge=0, description="Skip customers contacted within this many days.")
    chunk_rows: int = Field(
        default=200_000, ge=1_000, description="Customers scored per chunk (bounded memory)."
    )
    fallback_to_last_good: bool = Field(
        default=False,
        description="Allow a stale list: when the requested export is missing or failed its checks, build "
        "from the last validated one (flagged as stale). Same as --allow-stale.",
    )
    delivery_dir: Path | None = Field(
        default=None,
        description="Folder that receives each new call-list workbook (e.g. a shared drive); none = lake only.",
    )


class ApiSettings(BaseModel):
    """The HTTP scoring endpoint; nested under ``CALLCAST_API__*``."""

    host: str = Field(
        default="127.0.0.1", description="Bind address; beyond loopback an API key is required."
    )
    port: int = Field(default=8765, ge=1, le=65535, description="Port of the scoring endpoint.")
    api_key: SecretStr | None = Field(
        default=None, description="Required in the X-API-Key header off loopback."
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1_024, description="Largest accepted request body.")
    reload_seconds: float = Field(default=5.0, ge=0.5, description="How often to look for a new champion.")


class ServerSettings(BaseModel):
    """The one local Prefect server (UI + API) every command uses; nested under ``CALLCAST_SERVER__*``.

    Its database is SQLite under ``<home>/prefect`` unless ``PREFECT_API_DATABASE_CONNECTION_URL`` is set.
    """

    host: str = Field(default="127.0.0.1", description="Address the Prefect server binds to.")
    port: int = Field(default=4200, ge=1, le=65535, description="Port of the Prefect UI and API.")
    autostart: bool = Field(
        default=True,
        description="Start the local server when a command needs it and none runs; false: Prefect's "
        "temporary in-process server (runs not in the UI).",
    )
    start_timeout_seconds: float = Field(
        default=180.0, ge=5, description="How long to wait for it to answer."
    )
    work_pool: str = Field(default="callcast-local", description="Process work pool of the deployments.")
    pool_concurrency: int = Field(
        default=2,
        ge=1,
        description="Flow runs the work pool runs at once (keeps a small machine responsive).",
    )


class AlertSettings(BaseModel):
    """Who hears about failures, failed checks, drift and a missing export; nested under ``CALLCAST_ALERTS__*``."""

    webhook_url: SecretStr | None = Field(
        default=None,
        description="Where notifications go (secret). Kind set by CALLCAST_ALERTS__CHANNEL; none = no alerts.",
    )
    channel: Literal["webhook", "teams", "slack"] = Field(
        default="webhook",
        description="webhook: JSON POST {subject, body}; teams: a Teams workflow URL; slack: a Slack webhook.",
    )
    block_name: str | None = Field(
        default=None,
        description="Use this saved Prefect notification block instead (e.g. an e-mail block made in the UI).",
    )
    export_deadline_seconds: int = Field(
        default=26 * 3600,
        ge=10,
        description="Alert when a table's next callcast.export.completed has not come this long after the last.",
    )


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
    lake_lock_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a writer waits for another writer's lease on the same lake partition.",
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
    model_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA-256 key signing registered model pickles (secret, kept outside the lake); "
        "default: a Prefect Secret block (model_signing_key_block) or the key file <home>/keys/model-signing.key.",
    )
    model_signing_key_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the model signing key."
    )
    dask_address: str | None = Field(
        default=None, description="Dask scheduler address; default: a local cluster."
    )
    dask_workers: int = Field(default=2, ge=1, description="Workers of the local Dask cluster.")
    seed: int = Field(default=20260101, description="Seed of the demo data generator.")
    timezone: str = Field(
        default="Europe/Lisbon",
        description="The company's time zone: what 'today' means for exports, checks, scoring and the API.",
    )
    export: ExportSettings = Field(default_factory=ExportSettings)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    propensity: PropensityConfig = Field(default_factory=PropensityConfig)
    customers: CustomerSchema = Field(
        default_factory=CustomerSchema,
        description="The company's customer columns (extra pre-call columns, dropped ones); checks, training "
        "and scoring follow it.",
    )
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    server: ServerSettings = Field(default_factory=ServerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _one_customer_schema(self) -> Settings:
        """The top-level customer schema is the only one: the checks and the propensity model follow it."""
        for section in ("checks", "propensity"):
            nested = getattr(self, section).customer_schema
            if nested not in (CustomerSchema(), self.customers):
                raise ValueError(
                    f"set the customer schema once, with CALLCAST_CUSTOMERS__*; "
                    f"CALLCAST_{section.upper()}__CUSTOMER_SCHEMA__* is derived from it"
                )
        if self.checks.customer_schema != self.customers:
            self.checks = self.checks.model_copy(update={"customer_schema": self.customers})
        if self.propensity.customer_schema != self.customers or self.customers != CustomerSchema():
            self.propensity = self.propensity.for_schema(self.customers)
        return self

    def resolved_database_url(self) -> str:
        """The source database URL (secret: never log it; use :func:`callcast.database.masked_url`)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.home / 'callcast.db'}"

    def resolved_lake_url(self) -> str:
        return self.lake_url or str(self.home / "lake")

    def signing_key_file(self) -> Path:
        """The embedded default signing key file (created 0600 on first use, outside the lake)."""
        return self.home / "keys" / "model-signing.key"

    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and ``.env``), with explicit overrides on top.

    An override given as ``None`` means "not overridden" (``get_settings(lake_url=lake_url)`` reads the
    environment's lake when the caller got none).
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
