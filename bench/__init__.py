"""Benchmarks that measure the pipeline's model code on real data."""
