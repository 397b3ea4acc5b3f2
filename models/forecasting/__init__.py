"""Sales forecasting: data preparation, candidate statsmodels models, rolling backtest and selection.

Pure Python (no Prefect): ``tasks/forecasting.py`` wraps these functions for the flow.
"""

from models.forecasting.config import ForecastConfig
from models.forecasting.data import SeriesFrameSpec, prepare_series
from models.forecasting.engine import backtest_batch, forecast_batch

__all__ = ["ForecastConfig", "SeriesFrameSpec", "backtest_batch", "forecast_batch", "prepare_series"]
