"""What ``helm template --include-crds`` prints, assembled byte for byte from the engine's parts.

Helm v4.2.3 builds its output in three places, reproduced here (read from its source):

* ``pkg/action/action.go`` ``renderResources``: for each CRD of ``Chart.CRDObjects()`` (the chart's
  ``crds/`` files in archive order, then each dependency's, recursively) ``"---\\n# Source: %s\\n%s\\n"``
  with the file's bytes as they are; then the same for every manifest, sorted by kind
  (``releaseutil.SortManifests``, ``InstallOrder``). The embedded engine's client dry-run install
  gives that manifest part exactly (``RenderedChart.manifest``); only the CRDs are prepended here.
* ``pkg/release/v1/util/manifest_sorter.go``: files are visited in sorted path order, ``NOTES.txt``
  and partials (``_*``) skipped, each file split by ``SplitManifests`` (``(?:^|\\s*\\n)---\\s*``,
  each document left-trimmed, its trailing whitespace kept when it ends the file); a document with
  a ``helm.sh/hook`` annotation is a hook, dropped when an event is unknown; hooks are then sorted
  by kind, stably (``kind_sorter.go``: install order first, unknown kinds after, alphabetically).
* ``pkg/cmd/template.go``: ``strings.TrimSpace(manifest)`` and a newline, then for each hook
  ``"---\\n# Source: %s\\n%s\\n"``.

:func:`template_output` is that assembly; the engine module feeds it the engine's own manifest,
CRDs and raw per-template render. The parity test checks the result against the ``helm`` binary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Hook", "sort_hooks", "split_manifests", "template_output"]

#: releaseutil.InstallOrder (pkg/release/v1/util/kind_sorter.go).
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
    "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
)
_RANK = {kind: index for index, kind in enumerate(INSTALL_ORDER)}

#: The hook events Helm knows (pkg/release/v1/util/manifest_sorter.go ``events``).
HOOK_EVENTS = frozenset({
    "pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
    "pre-rollback", "post-rollback", "test", "test-success",
})
_HOOK = "helm.sh/hook"
_NOTES = "NOTES.txt"

# Go's RE2 ``\s`` is [\t\n\f\r ]; ``^`` without (?m) is the start of the text.
_SEPARATOR = re.compile(r"(?:\A|[\t\n\f\r ]*\n)---[\t\n\f\r ]*")


def _go_space(char: str) -> bool:
    """Go's ``unicode.IsSpace``."""
    return char in "\t\n\v\f\r \x85\xa0" or (ord(char) > 0xFF and char.isspace())


def _trim_left(text: str) -> str:
    index = 0
    while index < len(text) and _go_space(text[index]):
        index += 1
    return text[index:]


def _trim(text: str) -> str:
    """Go's ``strings.TrimSpace``."""
    end = len(text)
    while end > 0 and _go_space(text[end - 1]):
        end -= 1
    return _trim_left(text[:end])


def split_manifests(text: str) -> list[str]:
    """``releaseutil.SplitManifests``: the documents of a file, in order, each left-trimmed."""
    return [_trim_left(doc) for doc in _SEPARATOR.split(_trim_left(text)) if _trim(doc)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """One hook document as Helm keeps it: its template path, kind and text."""

    path: str
    kind: str
    manifest: str


def _head(doc: str) -> Mapping[str, Any]:
    from .._yaml import load_all_bytes

    try:
        parsed = load_all_bytes(doc.encode())
    except Exception:  # Helm's install already refused unparsable documents (the dry run)
        return {}
    first = parsed[0] if parsed else None
    return first if isinstance(first, dict) else {}


def sort_hooks(files: Mapping[str, str]) -> list[Hook]:
    """The hooks of a raw render, in the order ``helm template`` prints them."""
    hooks: list[Hook] = []
    for path in sorted(files):
        name = path.rsplit("/", 1)[-1]
        if path.endswith(_NOTES) or name.startswith("_") or not _trim(files[path]):
            continue
        for doc in split_manifests(files[path]):
            head = _head(doc)
            metadata = head.get("metadata")
            annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
            if not isinstance(annotations, dict) or _HOOK not in annotations:
                continue
            events = [e.strip().lower() for e in str(annotations[_HOOK]).split(",")]
            if any(e not in HOOK_EVENTS for e in events):
                continue  # Helm skips a document with an unknown hook event ("skipping unknown hooks")
            kind = head.get("kind")
            hooks.append(Hook(path=path, kind=kind if isinstance(kind, str) else "", manifest=doc))
    # sort.SliceStable with lessByKind: known kinds by install order, then unknown kinds by name.
    return sorted(hooks, key=lambda h: (0, _RANK[h.kind], "") if h.kind in _RANK else (1, 0, h.kind))


def template_output(manifest: str, crds: Sequence[tuple[str, str]], files: Mapping[str, str]) -> str:
    """``helm template --include-crds`` output from the dry-run manifest, the CRDs and the raw render."""
    crd_part = "".join(f"---\n# Source: {name}\n{data}\n" for name, data in crds)
    out = [_trim(crd_part + manifest), "\n"]
    out.extend(f"---\n# Source: {hook.path}\n{hook.manifest}\n" for hook in sort_hooks(files))
    return "".join(out)
