"""Keeping models good in production: performance metrics from outcomes, metric time series, drift, reports."""
