"""Benchmarks: one module per measurement, each with a `main()` that prints its numbers.

Run all with `python -m benchmarks`, or one with `python -m benchmarks.<module>`.
"""
