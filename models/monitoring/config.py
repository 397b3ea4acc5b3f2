"""Monitoring thresholds and rules (``CALLCAST_MONITORING__*``); defaults are the field's usual ones."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MonitoringConfig(BaseModel):
    """When drift or decay raises an alarm. Read once per flow run and passed down."""

    psi_warn: float = Field(
        default=0.1, ge=0, description="PSI from which a feature is flagged as a warning."
    )
    psi_act: float = Field(default=0.25, ge=0, description="PSI from which a feature (or the score) drifted.")
    p_value: float = Field(
        default=0.05, gt=0, lt=1, description="Significance of the KS / chi-square test per feature."
    )
    feature_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Drift when at least this share of features has p < p_value and PSI >= psi_warn.",
    )
    min_sample: int = Field(
        default=500,
        ge=1,
        description="Fewest scored rows for a data-drift alarm (below: reported, no alarm).",
    )
    min_labelled: int = Field(
        default=200, ge=1, description="Fewest labelled called contacts for a realised-performance alarm."
    )
    persistence_days: int = Field(
        default=1, ge=1, description="Consecutive monitoring runs with an alarm before drift is declared."
    )
    auc_tolerance: float = Field(
        default=0.05,
        ge=0,
        description="Decay when realised within-date AUC (upper 95% bound) falls this far below its expected "
        "value, or the estimated AUC this far below the reference's.",
    )
    window_days: int = Field(
        default=28, ge=1, description="Call dates whose outcomes form the realised window."
    )
    bins: int = Field(
        default=10, ge=2, description="Quantile bins of numeric features (reference quantiles)."
    )
    psi_floor: float = Field(default=1e-4, gt=0, lt=0.01, description="Share given to an empty PSI bin.")
    reference_sample: int = Field(
        default=5000, ge=100, description="Reference values kept per numeric feature for the KS test."
    )
    bootstrap: int = Field(default=400, ge=50, description="Day-block bootstrap resamples for intervals.")
    forecast_error_ratio: float = Field(
        default=1.5,
        gt=1,
        description="Forecast decay when a series group's live error reaches this multiple of its backtest error "
        "(and a one-sided test gives p < p_value).",
    )
    min_forecast_cells: int = Field(
        default=100, ge=1, description="Fewest series-days with actuals for a forecast alarm."
    )
    seed: int = Field(default=20260101, description="Seed of the bootstrap resampling and reference samples.")
