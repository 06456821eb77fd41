"""The drift report's bytes (pinned: the scheduled workflow diffs them) and the records' invariants."""

from __future__ import annotations

import json

import pytest

from pipeline.drift import (
    SECTION_ORDER,
    DriftItem,
    DriftReport,
    DriftStatus,
    ItemKind,
    Usage,
    format_json,
    format_markdown,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
R1 = Usage(recipe="eks-training", component="gpu-operator")
R2 = Usage(recipe="gke-inference", component="gpu-operator")

MOVED = DriftItem(kind=ItemKind.IMAGE, reference="nvcr.io/nvidia/driver:580", status=DriftStatus.TAG_MOVED,
                  used_by=(R1, R2), old=A, new=B,
                  detail="tag '580' points to another manifest than when the lock was made")
NEWER = DriftItem(kind=ItemKind.CHART, reference="https://helm.ngc.nvidia.com/nvidia gpu-operator@v25.3.0",
                  status=DriftStatus.NEWER_VERSION, used_by=(R1,), old="v25.3.0", new="v25.10.0",
                  detail="the locked version's archive is unchanged; 'v25.10.0' is the newest version offered")
LOCAL = DriftItem(kind=ItemKind.CHART, reference="./charts/app@1.0.0", status=DriftStatus.UNCHANGED,
                  used_by=(R2,), old=C, new=C, detail="local chart")
DOWN = DriftItem(kind=ItemKind.IMAGE, reference="ghcr.io/example/agent:1.2", status=DriftStatus.ERROR,
                 used_by=(R2,), old=C, detail="registry 'ghcr.io' kept failing | HTTP 503\nretry later")
REPORT = DriftReport.of([MOVED, NEWER, LOCAL, DOWN])

MARKDOWN = "\n".join([
    "# Drift report",
    "",
    "2 of 4 locked items drifted; 1 could not be checked.",
    "",
    "| status | items |",
    "| --- | ---: |",
    "| lock-mismatch | 0 |",
    "| tag-moved | 1 |",
    "| deleted | 0 |",
    "| republished | 0 |",
    "| error | 1 |",
    "| newer-version | 1 |",
    "| unchanged | 1 |",
    "",
    "## tag-moved (1)",
    "",
    "The tag now points to another manifest (old: locked digest, new: the tag's digest now).",
    "",
    "| kind | reference | old | new | used by | detail |",
    "| --- | --- | --- | --- | --- | --- |",
    f"| image | `nvcr.io/nvidia/driver:580` | `{A}` | `{B}` | "
    "eks-training/gpu-operator, gke-inference/gpu-operator | "
    "tag '580' points to another manifest than when the lock was made |",
    "",
    "## error (1)",
    "",
    "The source could not be asked; the item is unchecked (old: locked digest, if any).",
    "",
    "| kind | reference | old | new | used by | detail |",
    "| --- | --- | --- | --- | --- | --- |",
    f"| image | `ghcr.io/example/agent:1.2` | `{C}` |  | gke-inference/gpu-operator | "
    "registry 'ghcr.io' kept failing \\| HTTP 503 retry later |",
    "",
    "## newer-version (1)",
    "",
    "A newer chart version is offered (old: locked version, new: newest version).",
    "",
    "| kind | reference | old | new | used by | detail |",
    "| --- | --- | --- | --- | --- | --- |",
    "| chart | `https://helm.ngc.nvidia.com/nvidia gpu-operator@v25.3.0` | `v25.3.0` | `v25.10.0` | "
    "eks-training/gpu-operator | "
    "the locked version's archive is unchanged; 'v25.10.0' is the newest version offered |",
    "",
    "## unchanged (1)",
    "",
    "The source serves what the lock says (old and new: the locked digest).",
    "",
    "| kind | reference | old | new | used by | detail |",
    "| --- | --- | --- | --- | --- | --- |",
    f"| chart | `./charts/app@1.0.0` | `{C}` | `{C}` | gke-inference/gpu-operator | local chart |",
    "",
])

JSON = f"""\
{{
  "drift": true,
  "items": [
    {{
      "detail": "local chart",
      "kind": "chart",
      "new": "{C}",
      "old": "{C}",
      "reference": "./charts/app@1.0.0",
      "status": "unchanged",
      "usedBy": [
        {{
          "component": "gpu-operator",
          "recipe": "gke-inference"
        }}
      ]
    }},
    {{
      "detail": "the locked version's archive is unchanged; 'v25.10.0' is the newest version offered",
      "kind": "chart",
      "new": "v25.10.0",
      "old": "v25.3.0",
      "reference": "https://helm.ngc.nvidia.com/nvidia gpu-operator@v25.3.0",
      "status": "newer-version",
      "usedBy": [
        {{
          "component": "gpu-operator",
          "recipe": "eks-training"
        }}
      ]
    }},
    {{
      "detail": "registry 'ghcr.io' kept failing | HTTP 503\\nretry later",
      "kind": "image",
      "new": null,
      "old": "{C}",
      "reference": "ghcr.io/example/agent:1.2",
      "status": "error",
      "usedBy": [
        {{
          "component": "gpu-operator",
          "recipe": "gke-inference"
        }}
      ]
    }},
    {{
      "detail": "tag '580' points to another manifest than when the lock was made",
      "kind": "image",
      "new": "{B}",
      "old": "{A}",
      "reference": "nvcr.io/nvidia/driver:580",
      "status": "tag-moved",
      "usedBy": [
        {{
          "component": "gpu-operator",
          "recipe": "eks-training"
        }},
        {{
          "component": "gpu-operator",
          "recipe": "gke-inference"
        }}
      ]
    }}
  ],
  "reportVersion": 1,
  "summary": {{
    "deleted": 0,
    "error": 1,
    "lock-mismatch": 0,
    "newer-version": 1,
    "republished": 0,
    "tag-moved": 1,
    "unchanged": 1
  }}
}}
"""


def test_markdown_is_pinned() -> None:
    assert format_markdown(REPORT).decode() == MARKDOWN


def test_json_is_pinned_and_canonical() -> None:
    data = format_json(REPORT)
    assert data.decode() == JSON
    assert json.loads(data)["items"][0]["reference"] == "./charts/app@1.0.0"


def test_outputs_do_not_depend_on_the_order_items_were_found_in() -> None:
    shuffled = DriftReport.of([DOWN, LOCAL, NEWER, MOVED])
    assert shuffled == REPORT
    assert format_markdown(shuffled) == format_markdown(REPORT)


def test_no_drift_headline_and_only_the_unchanged_table() -> None:
    text = format_markdown(DriftReport.of([LOCAL])).decode()
    assert "No drift: all 1 locked items are as the lock says." in text
    assert text.count("\n## ") == 1
    assert "## unchanged (1)" in text
    assert json.loads(format_json(DriftReport.of([LOCAL])))["drift"] is False


def test_headline_when_nothing_could_be_checked() -> None:
    text = format_markdown(DriftReport.of([DOWN])).decode()
    assert "0 of 1 locked items drifted; 1 could not be checked." in text


def test_report_views() -> None:
    assert REPORT.drifted == (NEWER, DOWN, MOVED)
    assert REPORT.errors == (DOWN,)
    assert list(REPORT.counts()) == list(DriftStatus)
    assert set(SECTION_ORDER) == set(DriftStatus)
    assert len(SECTION_ORDER) == len(DriftStatus)


@pytest.mark.parametrize(("changes", "message"), [
    ({"used_by": ()}, "used_by must name at least one component"),
    ({"used_by": (R2, R1)}, "used_by must be sorted and without duplicates"),
    ({"kind": ItemKind.CHART}, "status 'tag-moved' is only for images"),
    ({"new": A}, "tag-moved needs old != new"),
    ({"status": DriftStatus.UNCHANGED}, "unchanged needs old == new"),
    ({"status": DriftStatus.DELETED}, "deleted needs old and no new"),
    ({"status": DriftStatus.ERROR, "new": None, "detail": ""}, "error needs a detail and no new"),
    ({"reference": ""}, "reference must not be empty"),
])
def test_an_item_is_valid_once_built(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"kind": MOVED.kind, "reference": MOVED.reference, "status": MOVED.status,
                                 "used_by": MOVED.used_by, "old": MOVED.old, "new": MOVED.new, "detail": MOVED.detail}
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        DriftItem(**fields)  # type: ignore[arg-type]


def test_a_report_must_be_sorted_and_unique() -> None:
    with pytest.raises(ValueError, match="sorted"):
        DriftReport(items=(MOVED, LOCAL))
    with pytest.raises(ValueError, match="unique"):
        DriftReport.of([LOCAL, LOCAL])
