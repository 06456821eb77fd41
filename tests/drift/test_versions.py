"""Chart version ordering: semver precedence, a leading 'v', pre-releases only for a pre-release lock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.drift import Version, newer_version, newest_version, parse_version


@pytest.mark.parametrize(("text", "expected"), [
    ("1.2.3", Version(text="1.2.3", major=1, minor=2, patch=3)),
    ("v1.2.3", Version(text="v1.2.3", major=1, minor=2, patch=3)),
    ("1.2", Version(text="1.2", major=1, minor=2, patch=0)),
    ("v2", Version(text="v2", major=2, minor=0, patch=0)),
    ("1.0.0-rc.1+build.5", Version(text="1.0.0-rc.1+build.5", major=1, minor=0, patch=0, prerelease=("rc", "1"))),
    ("25.3.0", Version(text="25.3.0", major=25, minor=3, patch=0)),
    ("latest", None),
    ("1.2.3.4", None),
    ("1.0.0-", None),
    ("V1.0.0", None),
    ("", None),
])
def test_parse_version(text: str, expected: Version | None) -> None:
    assert parse_version(text) == expected


# The example chain of semver §11, lowest first.
CHAIN = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
         "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0"]


def test_precedence_follows_semver() -> None:
    parsed = [parse_version(t) for t in CHAIN]
    keys = [v.precedence() for v in parsed if v is not None]
    assert len(keys) == len(CHAIN)
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@given(st.permutations(CHAIN))
def test_newest_does_not_depend_on_order(offered: list[str]) -> None:
    assert newest_version(offered) == "2.0.0"
    assert newest_version(offered, prereleases=True) == "2.0.0"
    assert newer_version("1.0.0-beta", offered) == "2.0.0"


@pytest.mark.parametrize(("locked", "offered", "expected"), [
    ("1.0.0", ["0.9.0", "1.0.0", "1.0.1", "1.2.0", "1.10.0"], "1.10.0"),  # numeric, not string, order
    ("1.0.0", ["1.0.0", "1.1.0-rc.1", "2.0.0-beta"], None),  # pre-releases ignored for a release lock
    ("1.1.0-rc.1", ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2"], "1.1.0-rc.2"),  # but not for a pre-release lock
    ("1.1.0-rc.1", ["1.1.0-rc.1", "1.1.0"], "1.1.0"),  # the release beats its pre-releases
    ("v1.0.0", ["v1.0.0", "v1.1.0", "1.0.5"], "v1.1.0"),  # a leading 'v' on either side
    ("1.0.0", ["v1.0.0", "1.0.0+build.2"], None),  # same precedence is not newer
    ("1.0.0", ["1.1.0", "v1.1.0"], "v1.1.0"),  # ties broken by text, whatever the order
    ("1.0.0", ["v1.1.0", "1.1.0"], "v1.1.0"),
    ("1.0.0", ["latest", "stable", "1.0.0"], None),  # non-versions skipped
    ("latest", ["1.0.0", "2.0.0"], None),  # nothing to compare with
    ("1.0", ["1.0.1"], "1.0.1"),
    ("1.0.0", [], None),
])
def test_newer_version(locked: str, offered: list[str], expected: str | None) -> None:
    assert newer_version(locked, offered) == expected


def test_newest_version() -> None:
    assert newest_version(["1.0.0", "2.0.0-rc.1", "junk"]) == "1.0.0"
    assert newest_version(["1.0.0", "2.0.0-rc.1", "junk"], prereleases=True) == "2.0.0-rc.1"
    assert newest_version(["junk"]) is None
