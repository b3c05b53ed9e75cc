"""Benchmarks behind `ovsnet bench ...`: figures printed and written as JSON."""
