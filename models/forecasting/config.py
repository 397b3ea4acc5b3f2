"""Configuration of the forecasting models, backtest, selection, intervals and fallback rules.

This is the ``CALLCAST_FORECAST__…`` section of the settings (``CALLCAST_FORECAST__HORIZON=5``,
``CALLCAST_FORECAST__CANDIDATES='["seas_ses","snaive_cal"]'``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Freq = Literal["D", "W"]
CandidateName = Literal[
    "seas_ses",
    "seas_lowrank",
    "snaive_cal",
    "combo",
    "stl_ets",
    "ets",
    "sarimax",
    "ses",
    "croston",
    "sba",
    "tsb",
]
INTERMITTENT_MODELS: tuple[str, ...] = ("croston", "sba", "tsb")

SEASON: dict[str, int] = {"D": 7, "W": 52}
YEAR_PERIODS: dict[str, float] = {"D": 365.25, "W": 365.25 / 7}


class ForecastConfig(BaseModel):
    """Models, backtest, selection and interval settings (defaults fit 3,000 weekly series in minutes)."""

    candidates: list[CandidateName] = Field(
        default_factory=lambda: [
            "seas_ses",
            "seas_lowrank",
            "snaive_cal",
            "combo",
            "stl_ets",
            "sarimax",
            "ses",
            "croston",
            "sba",
            "tsb",
        ],  # fmt: skip
        description="models compared with seasonal naive in the backtest (each used where its history "
        "requirement is met; croston/sba/tsb only on intermittent series; 'ets' is available but off: "
        "20x slower than stl_ets and no more accurate on the demo data)",
    )
    horizon: int | None = Field(None, ge=1, description="periods ahead; None = 28 days or 13 weeks")
    folds: int = Field(2, ge=1, description="rolling-origin folds (fewer/shorter when history is short)")
    min_fold_horizon: int | None = Field(
        None, ge=1, description="shortest fold when history is short; None = a third of the horizon"
    )
    selection: Literal["auto", "series", "pooled"] = Field(
        "auto",
        description="model choice per series ('series'), by the pool's summed relative error ('pooled'), "
        "or pooled when a series has fewer than min_series_points backtest points ('auto')",
    )
    min_series_points: int = Field(
        60, ge=1, description="backtest points a series needs for its own choice under 'auto'"
    )
    pool_column: str | None = Field(
        None,
        description="id column whose value pools series (shared seasonality, pooled choice); "
        "None = the last id column (Store,Dept -> departments across stores)",
    )
    lowrank_rank: int = Field(
        10, ge=1, description="rank of the SVD smoothing of a pool's history matrix (seas_lowrank)"
    )
    naive_guard: bool = Field(
        False,
        description="also give seasonal naive to a series whose own (short) backtest favours it over its "
        "pool's choice; off: the pooled choice is kept and the reason says so (measured better on holdout). "
        "A series chosen on its own evidence never gets a model its backtest ranks below seasonal naive",
    )
    season_smooth: int = Field(
        1, ge=0, le=4, description="weekly seasonal index smoothed across ±k neighbouring weeks (0 = none)"
    )
    holiday_weight: float = Field(5.0, ge=1, description="WMAE weight of holiday periods (Walmart's 5)")
    holiday_column: str | None = Field(
        "is_holiday", description="regressor that marks holidays (WMAE weights); None = equal weights"
    )
    calendar_regressors: list[str] = Field(
        default_factory=lambda: ["is_holiday", "IsHoliday", "holiday"],
        description="holiday regressors: future values from the calendar events they follow (moving "
        "holidays included); other regressors are set to their historical mean",
    )
    intermittent_zero_share: float = Field(
        0.5, ge=0, le=1, description="above this share of zero periods a series is intermittent"
    )
    mean_window: int | None = Field(None, ge=1, description="periods of the 'mean' baseline; None = 28 / 13")
    ets_trend: Literal["none", "add", "damped"] = Field(
        "none", description="trend of the seasonal ETS candidate (additive error and season)"
    )
    stl_seasonal: int = Field(
        7,
        ge=3,
        description="STL seasonal smoother length in cycles (odd; with 2-3 yearly cycles a "
        "degree-0 smoother averages them)",
    )
    stl_seasonal_deg: int = Field(0, ge=0, le=1, description="STL seasonal LOESS degree (0 = constant)")
    stl_robust: bool = Field(True, description="robust STL (returns and one-off spikes are down-weighted)")
    fourier_yearly: int = Field(4, ge=0, description="yearly Fourier pairs in SARIMAX (0 = none)")
    fourier_weekly: int = Field(3, ge=0, le=3, description="weekly Fourier pairs in SARIMAX (daily data)")
    sarimax_order: tuple[int, int, int] = Field(
        (1, 0, 0), description="ARIMA (p, d, q) of the SARIMAX errors"
    )
    sarimax_trend: bool = Field(True, description="linear time trend among the SARIMAX regressors")
    sarimax_fit: Literal["two_step", "mle"] = Field(
        "two_step", description="ARMA parameters from the OLS residuals (fast) or full maximum likelihood"
    )
    interval_method: Literal["conformal", "model"] = Field(
        "conformal",
        description="intervals from backtest residual quantiles per model and step "
        "(scaled per series), or the models' own normal theory",
    )
    interval_scaling: Literal["series", "level"] = Field(
        "series",
        description="error scale of the intervals: the series' own (constant over the horizon) or "
        "also growing with the forecast's level (square root of level / mean level)",
    )
    nonnegative: bool = Field(True, description="clip forecasts and intervals at 0 (sales are counts)")
    batch_size: int = Field(100, ge=1, description="series per batch file / mapped task")
    dask_min_series: int = Field(
        500, ge=0, description="below this many series the flow runs in-process (no Dask cluster)"
    )
    fallback_warn_share: float = Field(
        0.25, ge=0, le=1, description="warn loudly when more than this share of series get a baseline"
    )

    def season(self, freq: str) -> int:
        """Seasonal period: 7 for daily, 52 for weekly data."""
        return SEASON[freq]

    def horizon_for(self, freq: str) -> int:
        """Forecast horizon in periods."""
        return self.horizon if self.horizon is not None else {"D": 28, "W": 13}[freq]

    def mean_window_for(self, freq: str) -> int:
        """Window of the 'mean' baseline in periods."""
        return self.mean_window if self.mean_window is not None else {"D": 28, "W": 13}[freq]

    def min_fold_horizon_for(self, freq: str) -> int:
        """Shortest backtest fold."""
        h = self.horizon_for(freq)
        return min(h, self.min_fold_horizon or max(1, -(-h // 3)))
