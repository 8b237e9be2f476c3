"""Benchmarks that print their figures; `bench.harness` is what they share."""
