"""Propensity model: pure functions and sklearn estimators (no Prefect, no I/O beyond PNG plots)."""
