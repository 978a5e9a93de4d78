"""Monitoring: the tables of every batch, drift, data-quality checks and the dashboard."""
