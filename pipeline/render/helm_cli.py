"""The second engine: the pinned ``helm`` binary, run as ``helm template`` (``--engine helm-cli``).

The same :class:`~pipeline.render.engines.Engine` as :mod:`pipeline.render.engine`, with the same
inputs and outputs, so :func:`pipeline.render.job.run_job` renders a job with either:

* :func:`template_chart` runs ``helm template RELEASE chart.tgz --namespace NS --kube-version KV
  --api-versions A … --include-crds -f values.json`` and returns its standard output as it is.
* :func:`render_templates` renders in-tree manifest templates in the same wrapper chart as the
  in-process engine. ``helm template`` prints documents in kind order, not file by file, so each
  template ``F`` becomes a partial ``_F`` and ``F`` a one-document template that prints
  ``include "…/_F" . | b64enc`` (``.Template.Name`` stays ``F``, as in the in-process render); the
  decoded text gets the engine's own ``<no value>`` clean-up.

The binary is ``$PIPELINE_HELM`` (set by the worker pool once
:func:`pipeline.render.identity.helm_binary` has checked its sha256 against ``tools/go/tools.json``).
It runs with an explicit environment: the sandbox's HOME, XDG and Helm directories (fresh ones when
called outside a sandbox), no plugins, no repository or registry config, no kubeconfig, proxies at a
closed port. A non-zero exit is a :class:`RenderError` carrying the exit code and Helm's message.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import RenderError
from .engines import RenderTarget
from .identity import HELM_CLI, helm_binary, pinned_helm_cli
from .wrapper import WrapperChart

__all__ = ["engine_facts", "render_templates", "template_chart"]

#: Variables a sandbox sets that helm may read; everything else is left out.
_PASSED = ("TZ", "LC_ALL", "LANG", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY")
_DEAD_PROXY = "http://127.0.0.1:9"
_TIMEOUT = 300


def _binary() -> Path:
    named = os.environ.get("PIPELINE_HELM")
    return Path(named) if named else helm_binary()


def engine_facts() -> dict[str, str]:
    """What a worker reports: the pinned identity and the binary's path (the parent hashes it)."""
    pinned = pinned_helm_cli()
    version = pinned["version"] if pinned else "unknown"
    return {"name": HELM_CLI, "version": version, "helm": version, "library_path": str(_binary())}


def _environment(home: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home / "tmp"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"),
           "HELM_CACHE_HOME": str(home / ".cache/helm"), "HELM_CONFIG_HOME": str(home / ".config/helm"),
           "HELM_DATA_HOME": str(home / ".local/share/helm"), "HELM_PLUGINS": str(home / "no-plugins"),
           "HELM_REGISTRY_CONFIG": str(home / "no-registry.json"),
           "HELM_REPOSITORY_CONFIG": str(home / "no-repositories.yaml"),
           "HELM_REPOSITORY_CACHE": str(home / "no-repository-cache"),
           "KUBECONFIG": str(home / "no-kubeconfig"), "TZ": "UTC", "LC_ALL": "C.UTF-8",
           "HTTP_PROXY": _DEAD_PROXY, "HTTPS_PROXY": _DEAD_PROXY, "NO_PROXY": ""}
    env.update({k: os.environ[k] for k in _PASSED if k in os.environ})
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def _template(chart: bytes, values: Mapping[str, Any], *, target: RenderTarget, what: str,
              include_crds: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="helm-cli-") as tmp:
        root = Path(tmp)
        (root / "chart.tgz").write_bytes(chart)
        (root / "values.json").write_text(json.dumps(dict(values), sort_keys=True), encoding="utf-8")
        argv = [str(_binary()), "template", target.release, str(root / "chart.tgz"), "--namespace", target.namespace,
                "--kube-version", target.kube_version, "-f", str(root / "values.json")]
        if include_crds:
            argv.append("--include-crds")
        for api in target.api_versions:
            argv += ["--api-versions", api]
        try:
            done = subprocess.run(argv, env=_environment(root / "home"), cwd=root, capture_output=True,
                                  timeout=_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderError(f"{what}: helm template could not run: {exc}",
                              hint="check the pinned helm binary ('nox -s tools')") from exc
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-2000:] or "no message"
        raise RenderError(f"{what}: helm template (exit {done.returncode}) refused it: {tail}",
                          hint="fix the template or the values named in Helm's message, then re-run")
    return done.stdout.decode()


def template_chart(archive: bytes, *, values: Mapping[str, Any], target: RenderTarget, what: str) -> str:
    """``helm template RELEASE chart --include-crds`` of the pinned binary: its output, unchanged."""
    return _template(archive, values, target=target, what=what, include_crds=True)


def render_templates(chart: WrapperChart, *, values: Mapping[str, Any], target: RenderTarget,
                     what: str) -> dict[str, str]:
    """In-tree manifest templates rendered by ``helm template``; catalog path → text (as the engine's)."""
    from .._yaml import load_all_bytes
    from .job import _sources

    def partial(short: str, data: bytes) -> dict[str, bytes]:
        printed = f'kind: InTreeRender\ntext: {{{{ include "{chart.name}/templates/_{short}" . | b64enc | quote }}}}\n'
        return {f"_{short}": data, short: printed.encode()}

    output = _template(chart.archive(partial), values, target=target, what=what, include_crds=False)
    out = {}
    for path, body in chart.by_path(_sources(output)).items():
        text = base64.b64decode(load_all_bytes(body.encode())[0]["text"]).decode()
        # engine.Render's own clean-up of each file (pkg/engine/engine.go), which `include` skips.
        out[path] = text.replace("<no value>", "")
    return out
