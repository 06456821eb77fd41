"""What a test needs from the machine or from ``../shared``, and the markers that say so.

Where a need is missing the test is skipped, except under ``CI=true``, where it fails: CI must
provide everything (:func:`missing`). A fixture that starts a server or reads a shared asset
requires its test to carry the marker that selects such tests (:func:`require_marker`).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["missing", "require_marker"]


def missing(reason: str, *, ci: str = "CI must install it") -> NoReturn:
    """Skip for ``reason``; under ``CI=true`` fail, saying what CI must do (``ci``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; {ci}")
    pytest.skip(reason)


def require_marker(request: pytest.FixtureRequest, marker: str, what: str | None = None) -> None:
    """Fail a test that uses this fixture (``what``: a test using it) without ``@pytest.mark.<marker>``."""
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"{what or f'a test using the {request.fixturename!r} fixture'} must be marked "
                    f"@pytest.mark.{marker}")
