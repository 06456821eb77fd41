"""The Sigstore trust a keyless signature needs on the far side of the gap.

Offline verification of a keyless (Fulcio certificate) signature needs the Sigstore instance's
``trusted_root.json`` (Fulcio roots, Rekor and CT log keys) and, for a later TUF refresh from a
mirror, its TUF ``root.json``. The bundle carries both, for the production and the staging
instance, *as shipped inside the pinned sigstore wheel* (``sigstore/_store/<tuf-url>/``): no
network, nothing read from the user's cache. ``../shared/sigstore`` holds signed test bundles,
not a trusted root, so the wheel is the source.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["INSTANCES", "sigstore_trust_files"]

#: Sigstore instance → its TUF repository (the directory name the sigstore wheel stores it under)
INSTANCES = {"production": "https://tuf-repo-cdn.sigstore.dev", "staging": "https://tuf-repo-cdn.sigstage.dev"}
_FILES = ("trusted_root.json", "root.json")


def sigstore_trust_files() -> dict[str, bytes]:
    """``sigstore/<instance>/<file>`` → bytes, for every instance and file the wheel ships."""
    out: dict[str, bytes] = {}
    store = resources.files("sigstore") / "_store"
    for instance, url in sorted(INSTANCES.items()):
        directory = store / url.replace(":", "%3A").replace("/", "%2F")
        for name in _FILES:
            entry = directory / name
            if entry.is_file():
                out[f"sigstore/{instance}/{name}"] = entry.read_bytes()
    return out
