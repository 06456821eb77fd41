"""The real AICR catalog end to end, where this machine allows it.

Its charts live on the internet, but its two OpenShift recipes are made of manifest-only components
(OLM subscriptions and operator custom resources rendered from in-tree templates): those lock and
reproduce here for real, with the real catalog's values and templates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.__main__ import main

OCP = ("ocp-training", "ocp-inference")


@pytest.mark.shared
def test_real_openshift_recipes_lock_and_reproduce(aicr_catalog: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--catalog", str(aicr_catalog), "--lockdir", str(tmp_path / "locks"), "--cache", str(tmp_path / "cache"),
              "--workers", "2", *(arg for name in OCP for arg in ("--recipe", name))]
    # nvcr.io is not reachable here: the locks keep the digests the references carry.
    assert main(["lock", "--no-resolve", *common]) == 0
    assert main(["reproduce", *common]) == 0
    assert "2/2 recipes reproduced" in capsys.readouterr().out
    body = json.loads((tmp_path / "locks/ocp-training.lock.json").read_text())
    assert all(component["chart"] is None for component in body["components"].values())
    images = {i["ref"] for c in body["components"].values() for i in c["images"]}
    # The NicClusterPolicy's sibling fields, combined (values.yaml of network-operator-ocp).
    assert "nvcr.io/nvidia/mellanox/doca-driver:doca3.3.0-26.01-1.0.0.0-0" in images
