"""Sandboxed worker processes: environments, isolation, deduplication, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import RenderError
from pipeline.render.job import RenderJob
from pipeline.render.pool import WorkerPool
from pipeline.render.sandbox import CANONICAL, VARIANT_A, VARIANT_B, sandbox_environment
from tests import factories


def _job(values: dict[str, object], chart: bytes | None = None) -> RenderJob:
    return RenderJob(component="app", what="component 'app'", chart=chart or factories.chart_archive(),
                     values=values, release="app", namespace="ns", kube_version="1.33.0",
                     api_versions=(), manifest_chart_version="1.0.0")


def test_sandbox_environment_is_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    env = sandbox_environment(VARIANT_B, tmp_path)
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["TZ"] == "Pacific/Chatham"
    assert env["HOME"].startswith(str(tmp_path))
    assert list(env) == sorted(env, reverse=True)  # variation B reverses the environment order
    assert env["KUBECONFIG"].startswith(str(tmp_path))


def test_variations_differ_on_every_axis() -> None:
    for axis in ("tz", "locale", "umask", "home_name", "workdir_name", "hash_seed"):
        values = {getattr(v, axis) for v in (CANONICAL, VARIANT_A, VARIANT_B)}
        assert len(values) == 3, axis
    assert VARIANT_A.walk_order != VARIANT_B.walk_order
    assert VARIANT_A.env_order != VARIANT_B.env_order


def test_workers_report_their_sandbox_and_have_no_network() -> None:
    with WorkerPool(VARIANT_B, workers=1) as pool:
        pool.render([_job({"replicas": 1})])
        (hello,) = pool.hellos
    assert hello["tz"] == "Pacific/Chatham"
    assert hello["umask"] == "0077"
    assert "for the second render" in hello["cwd"]
    assert hello["network"].startswith(("isolated", "not isolated"))
    assert hello["engine"]["helm"] == "v4.2.3"


def test_same_content_renders_once_and_results_equal_across_variations() -> None:
    jobs = [_job({"replicas": 1}), _job({"replicas": 1}), _job({"replicas": 2})]
    with WorkerPool(VARIANT_A, workers=2) as pool_a:
        a = pool_a.render(jobs)
        assert pool_a.rendered == 2
    with WorkerPool(VARIANT_B, workers=2) as pool_b:
        b = pool_b.render(jobs)
    assert a == b
    assert len(a) == 2


def test_a_failing_job_raises_with_helms_message() -> None:
    bad = factories.chart_archive(templates={"x.yaml": "{{ fail \"boom from the chart\" }}\n"})
    with WorkerPool(CANONICAL, workers=1) as pool, pytest.raises(RenderError, match="boom from the chart"):
        pool.render([_job({}, chart=bad)])
