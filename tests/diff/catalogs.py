"""Two lock sets from our catalog: as committed, and after a chart bump, a values change that moves
an image tag, and a removed component (the upgrade PR a reviewer sees)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def copy_catalog(target: Path) -> Path:
    shutil.copytree(ROOT / "recipes", target)
    return target


def bump(catalog: Path) -> Path:
    """telemetry-exporter 4.2.3 → 4.2.4 (chart and pin), its image tag moved by a value, node-tuning
    removed from h100-eks-training (so from the kubeflow recipe only)."""
    chart = catalog / "charts" / "telemetry-exporter" / "Chart.yaml"
    chart.write_text(chart.read_text().replace("\nversion: 4.2.3\n", "\nversion: 4.2.4\n"))
    registry = catalog / "registry.yaml"
    registry.write_text(registry.read_text().replace('defaultVersion: "4.2.3"', 'defaultVersion: "4.2.4"'))
    values = catalog / "components" / "telemetry-exporter" / "values.yaml"
    values.write_text(values.read_text() + "\nimage:\n  tag: 4.2.4-4.1.1-ubuntu22.04\n")
    overlay = catalog / "overlays" / "h100-eks-training.yaml"
    text = overlay.read_text().replace("      dependencyRefs:\n        - node-tuning\n", "")
    start, end = text.index("    # Manifest-only component (upstream nodewright"), text.index("  validation:")
    overlay.write_text(text[:start] + "\n" + text[end:])
    return catalog


def lock(catalog: Path, lockdir: Path, cache: Path) -> Path:
    assert main(["lock", "--no-resolve", "--catalog", str(catalog), "--lockdir", str(lockdir),
                 "--cache", str(cache), "--workers", "1"]) == 0
    return lockdir
