"""The discovery benchmark runs and reports (on a small render: speed is measured by ``nox -s bench``)."""

from __future__ import annotations

from benchmarks.discovery import generate, run


def test_generated_render_is_deterministic_and_at_least_the_size_asked() -> None:
    first = generate(300_000)
    assert len(first) >= 300_000
    assert first == generate(300_000)


def test_run_reports_both_rates_and_their_ratio() -> None:
    lines = run(size=300_000, repeat=1)
    assert len(lines) == 4
    assert "PyYAML C loader" in lines[1] and "MB/s" in lines[1]
    assert "images" in lines[2] and "MB/s" in lines[2]
    assert lines[3].strip().startswith("ratio discovery / baseline")
