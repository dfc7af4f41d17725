"""Reproducible benchmarks; each prints one JSON object."""
