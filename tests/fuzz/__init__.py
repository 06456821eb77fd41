"""Fuzz targets (``targets.py``), shared by the Hypothesis properties and the atheris harness (``nox -s fuzz``)."""
