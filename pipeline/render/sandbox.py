"""Sandboxes for render workers, and the environment variations that reproduce applies on purpose.

A :class:`Variation` says how one sandbox differs from another (in the spirit of Debian's
reprotest): time zone, locale, HOME and working-directory paths, umask, the order and the extra
members of the environment, the hash seed, and the order chart trees are walked. ``CANONICAL`` is
the environment locks are made in; ``VARIANT_A`` and ``VARIANT_B`` differ from it and from each
other on every axis. :func:`sandbox_environment` builds a worker's environment from an allow-list:
nothing of the caller's environment leaks in except what is named here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["CANONICAL", "VARIANT_A", "VARIANT_B", "Variation", "sandbox_environment"]

WalkOrder = Literal["sorted", "reversed"]

#: Proxy variables point at the discard port on loopback: anything that tries the network fails fast.
_DEAD_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True, slots=True, kw_only=True)
class Variation:
    """One deliberately chosen render environment."""

    name: str
    tz: str
    locale: str
    umask: int
    home_name: str
    workdir_name: str
    env_order: WalkOrder
    extra_env: tuple[tuple[str, str], ...]
    hash_seed: str
    walk_order: WalkOrder

    def describe(self) -> tuple[str, ...]:
        """Human-readable list of what this variation sets (logged by reproduce)."""
        extra = ", ".join(f"{k}={v}" for k, v in self.extra_env) or "none"
        return (
            f"TZ={self.tz}",
            f"LC_ALL={self.locale}",
            f"umask={self.umask:04o}",
            f"HOME=<tmp>/{self.home_name}",
            f"cwd=<tmp>/{self.workdir_name}",
            f"environment order={self.env_order}",
            f"extra variables: {extra}",
            f"PYTHONHASHSEED={self.hash_seed}",
            f"chart tree walk={self.walk_order}",
        )


CANONICAL = Variation(
    name="lock", tz="UTC", locale="C.UTF-8", umask=0o022, home_name="home", workdir_name="work",
    env_order="sorted", extra_env=(), hash_seed="0", walk_order="sorted",
)
VARIANT_A = Variation(
    name="A", tz="America/St_Johns", locale="C", umask=0o002, home_name="h",
    workdir_name="w", env_order="sorted",
    extra_env=(("SOURCE_DATE_EPOCH", "0"), ("LANGUAGE", "de")),
    hash_seed="1", walk_order="sorted",
)
VARIANT_B = Variation(
    name="B", tz="Pacific/Chatham", locale="POSIX", umask=0o077,
    home_name="a much longer home directory, with spaces and ünïcödé",
    workdir_name="deeply/nested/working directory/for the second render",
    env_order="reversed",
    extra_env=(("SOURCE_DATE_EPOCH", "2000000000"), ("LANGUAGE", "ja"), ("HELM_DEBUG", "true"),
               ("RECIPE_PIPELINE_NOISE", "x" * 64)),
    hash_seed="4294967295", walk_order="reversed",
)


def sandbox_environment(variation: Variation, root: Path) -> dict[str, str]:
    """The complete environment of a worker whose sandbox lives under ``root``.

    HOME, the XDG and Helm directories and TMPDIR are fresh, empty directories inside ``root``;
    KUBECONFIG points nowhere; proxies point at a closed port. ``PYTHONPATH`` names this
    package's parent so the worker imports the same code as the caller.
    """
    home = root / variation.home_name
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(root / "tmp"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "HELM_CACHE_HOME": str(home / ".cache/helm"),
        "HELM_CONFIG_HOME": str(home / ".config/helm"),
        "HELM_DATA_HOME": str(home / ".local/share/helm"),
        "HELM_PLUGINS": str(home / "no-plugins"),
        "HELM_REGISTRY_CONFIG": str(home / "no-registry.json"),
        "HELM_REPOSITORY_CONFIG": str(home / "no-repositories.yaml"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
        "TZ": variation.tz,
        "LC_ALL": variation.locale,
        "LANG": variation.locale,
        "PYTHONHASHSEED": variation.hash_seed,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "HTTP_PROXY": _DEAD_PROXY,
        "HTTPS_PROXY": _DEAD_PROXY,
        "http_proxy": _DEAD_PROXY,
        "https_proxy": _DEAD_PROXY,
        "NO_PROXY": "",
        "GODEBUG": "",
    }
    env.update(variation.extra_env)
    for directory in (home, root / "tmp", root / variation.workdir_name):
        directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(env.items(), reverse=variation.env_order == "reversed")
    return dict(ordered)


def python_executable() -> str:
    """The interpreter workers run: the caller's own (same venv, same pinned wheels)."""
    return sys.executable or os.fspath(Path("/usr/bin/python3"))
