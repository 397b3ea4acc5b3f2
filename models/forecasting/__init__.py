"""Sales forecasting: data preparation, candidate statsmodels models, rolling backtest and selection.

Pure Python (no Prefect): ``tasks/forecasting.py`` wraps these functions for the flow. Import the
submodules (``config``, ``data``, ``engine`` ...) directly; this package imports nothing heavy itself.
"""
