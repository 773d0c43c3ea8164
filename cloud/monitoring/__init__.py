"""Keeping models good in production: performance metrics from outcomes, metric time series, drift, reports."""

#: days a drift check looks back by default; here so the CLI's options need not import the statistics
DEFAULT_DRIFT_DAYS = 7
