"""Measurements: baselines, the codec and speed reports, BD-rate, plots, kernel benchmarks, the demo."""
