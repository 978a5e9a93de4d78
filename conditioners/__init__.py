"""Conditioners: raw feeds (bytes) in, standardized long-format frames and quarantined rows out."""
