"""Configuration of the forecasting models, backtest and fallback rules."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Freq = Literal["D", "W"]
CandidateName = Literal["ets", "stl_ets", "sarimax"]

SEASON: dict[str, int] = {"D": 7, "W": 52}
YEAR_PERIODS: dict[str, float] = {"D": 365.25, "W": 365.25 / 7}


class ForecastConfig(BaseModel):
    """Models, backtest and fallback settings (defaults chosen to fit 3,000 weekly series in minutes)."""

    candidates: list[CandidateName] = Field(default_factory=lambda: ["ets", "stl_ets", "sarimax"])
    horizon: int | None = Field(None, ge=1, description="periods ahead; None = 28 days or 13 weeks")
    folds: int = Field(2, ge=1, description="rolling-origin folds, each `horizon` periods long")
    holiday_weight: float = Field(5.0, ge=1, description="WMAE weight of holiday periods (Walmart's 5)")
    holiday_column: str | None = Field(
        "is_holiday", description="regressor that marks holidays (WMAE weights); None = equal weights"
    )
    calendar_regressors: list[str] = Field(
        default_factory=lambda: ["is_holiday", "IsHoliday", "holiday"],
        description="regressors repeating yearly: future values copied from one year earlier; "
        "other regressors are set to their historical mean (e.g. unplanned promotions)",
    )
    intermittent_zero_share: float = Field(
        0.5, ge=0, le=1, description="above this share of zero periods a series is intermittent"
    )
    mean_window: int | None = Field(None, ge=1, description="periods of the 'mean' baseline; None = 28 / 13")
    ets_trend: Literal["none", "add", "damped"] = Field(
        "none", description="trend of the seasonal ETS candidate (additive error and season)"
    )
    stl_seasonal: int = Field(7, ge=3, description="STL seasonal smoother length (odd)")
    stl_seasonal_deg: int = Field(0, ge=0, le=1, description="STL seasonal LOESS degree (0 = constant)")
    fourier_yearly: int = Field(4, ge=0, description="yearly Fourier pairs in SARIMAX (0 = none)")
    fourier_weekly: int = Field(3, ge=0, le=3, description="weekly Fourier pairs in SARIMAX (daily data)")
    sarimax_order: tuple[int, int, int] = (1, 0, 0)
    sarimax_trend: bool = Field(True, description="linear time trend among the SARIMAX regressors")
    sarimax_fit: Literal["two_step", "mle"] = Field(
        "two_step", description="ARMA parameters from the OLS residuals (fast) or full maximum likelihood"
    )
    nonnegative: bool = Field(True, description="clip forecasts and intervals at 0 (sales are counts)")
    batch_size: int = Field(100, ge=1, description="series per batch file / mapped task")

    def season(self, freq: str) -> int:
        """Seasonal period: 7 for daily, 52 for weekly data."""
        return SEASON[freq]

    def horizon_for(self, freq: str) -> int:
        """Forecast horizon in periods."""
        return self.horizon if self.horizon is not None else {"D": 28, "W": 13}[freq]

    def mean_window_for(self, freq: str) -> int:
        """Window of the 'mean' baseline in periods."""
        return self.mean_window if self.mean_window is not None else {"D": 28, "W": 13}[freq]

    def min_history(self, freq: str) -> int:
        """Periods a series needs for the seasonal candidates and the full backtest."""
        return 2 * self.season(freq) + self.folds * self.horizon_for(freq)
