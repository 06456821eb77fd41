"""Benchmarks run by ``nox -s bench``: figures against baselines measured in the same run."""
