"""Build the pinned Go tool set (helm, crane, cosign, kyverno) reproducibly into a project cache.

Contract:

- input: ``tools/go/tools.json`` (committed): per tool (the key is the binary's name) its Go
  module, ``cmd`` package, exact version, how it is built, optional ``ldflags`` (e.g. the version
  string a Makefile would stamp) and, once recorded, the binary's sha256 and the Go version that
  produced it; the Go toolchain on ``PATH`` (``GOTOOLCHAIN`` from tools.json);
- output: the binaries in ``$PIPELINE_TOOLS_DIR`` (default ``.cache/tools/bin``, ignored by git)
  and a stamp beside them; with ``--record``, tools.json rewritten with the digests just built;
- builds are reproducible: ``CGO_ENABLED=0``, ``-trimpath``, ``-buildvcs=false``, an explicit
  environment (the caller's ``GOFLAGS``, ``GOAMD64``, ``CGO_*`` never leak in), so the same Go
  version gives the same bytes on any machine of the same OS and architecture;
- ``build: install`` tools are ``go install module/cmd@version``; ``build: module-source`` tools
  (modules with ``replace`` directives, which ``go install …@version`` refuses) are downloaded
  with ``go mod download -json module@version``, copied out of the read-only module cache and
  built there with ``go build`` (the module's own ``go.mod``/``go.sum`` and replaces apply);
- a tool is rebuilt only when its entry in tools.json changed since the stamp, its binary is
  missing, or the binary's sha256 is not the recorded one;
- errors (exit 1): a failed build (argv, exit code and the tail of its output), or a built binary
  whose sha256 differs from the recorded one (without ``--record``).

Stdlib only: it runs before any environment exists (``.ci/run``, ``nox -s tools``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS_JSON = Path(__file__).resolve().with_name("tools.json")
DEFAULT_DIR = ROOT / ".cache" / "tools" / "bin"
ENV_DIR = "PIPELINE_TOOLS_DIR"
STAMP = ".stamp.json"
_BUILD_KINDS = ("install", "module-source")
#: Variables passed through from the caller (where Go finds the network, caches and itself).
_PASS = ("PATH", "HOME", "GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GONOSUMDB", "GOPRIVATE",
         "GOSUMDB", "GONOPROXY", "GOINSECURE", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
         "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")


class ToolError(Exception):
    """A tool could not be built or does not match its recorded digest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """One pinned tool, as tools.json declares it."""

    name: str
    module: str
    package: str
    version: str
    build: str
    ldflags: str
    sha256: str | None
    go: str | None

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Tool:
        """Parse and check one tools.json entry."""
        def text(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ToolError(f"{TOOLS_JSON.name}: tool {name!r}: {key!r} must be a non-empty string")
            return value

        tool = cls(name=name, module=text("module"), package=text("package"), version=text("version"),
                   build=text("build"), ldflags=str(data.get("ldflags", "")), sha256=data.get("sha256"),
                   go=data.get("go"))
        if tool.build not in _BUILD_KINDS:
            raise ToolError(f"{TOOLS_JSON.name}: tool {name!r}: build {tool.build!r} is not one of {_BUILD_KINDS}")
        if not (tool.package == tool.module or tool.package.startswith(tool.module + "/")):
            raise ToolError(f"{TOOLS_JSON.name}: tool {name!r}: package {tool.package!r} is not in {tool.module!r}")
        if tool.version in ("latest", "") or not tool.version.startswith("v"):
            raise ToolError(f"{TOOLS_JSON.name}: tool {name!r}: version {tool.version!r} is not an exact v-version")
        return tool

    def key(self, toolchain: str) -> str:
        """What the build depends on (the stamp compares it; recorded digests are outputs, not inputs)."""
        return json.dumps([self.module, self.package, self.version, self.build, self.ldflags, toolchain])


def load(path: Path = TOOLS_JSON) -> tuple[dict[str, Any], list[Tool]]:
    """tools.json as data and as parsed tools (sorted by name)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    tools = [Tool.from_json(name, entry) for name, entry in sorted(data["tools"].items())]
    return data, tools


def tools_dir() -> Path:
    """Where the binaries live: ``$PIPELINE_TOOLS_DIR`` or ``.cache/tools/bin``."""
    env = os.environ.get(ENV_DIR)
    return Path(env).resolve() if env else DEFAULT_DIR


def file_sha256(path: Path) -> str:
    """The sha256 of a file, as ``sha256:<hex>``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _env(bindir: Path, toolchain: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASS}
    env.update({"CGO_ENABLED": "0", "GOFLAGS": "-trimpath -buildvcs=false",
                "GOTOOLCHAIN": toolchain, "GOBIN": str(bindir), "LC_ALL": "C"})
    return env


def _run(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> str:
    proc = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return proc.stdout


def _build(tool: Tool, *, bindir: Path, env: Mapping[str, str]) -> None:
    flags = [f"-ldflags={tool.ldflags}"] if tool.ldflags else []
    match tool.build:
        case "install":
            _run(["go", "install", *flags, f"{tool.package}@{tool.version}"], env=env)
            built = bindir / tool.package.rsplit("/", 1)[1]
            if built.name != tool.name:
                built.replace(bindir / tool.name)
        case "module-source":
            info = json.loads(_run(["go", "mod", "download", "-json", f"{tool.module}@{tool.version}"], env=env))
            source = Path(info["Dir"])
            with tempfile.TemporaryDirectory(prefix=f"{tool.name}-src-", dir=bindir.parent) as tmp:
                work = Path(tmp) / "src"
                shutil.copytree(source, work)
                for path in (work, *work.rglob("*")):  # the module cache is read-only
                    path.chmod(path.stat().st_mode | 0o200)
                relative = "./" + tool.package.removeprefix(tool.module).lstrip("/")
                _run(["go", "build", *flags, "-o", str(bindir / tool.name), relative], env=env, cwd=work)
        case _:
            raise ToolError(f"tool {tool.name!r}: unknown build {tool.build!r}")


def _read_stamp(bindir: Path) -> dict[str, str]:
    try:
        data = json.loads((bindir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_all(*, record: bool, only: Sequence[str] = (), force: bool = False) -> int:
    """Build what is out of date; returns 0, or raises ToolError."""
    data, tools = load()
    toolchain = str(data.get("toolchain", "local"))
    bindir = tools_dir()
    bindir.mkdir(parents=True, exist_ok=True)
    env = _env(bindir, toolchain)
    go_version = _run(["go", "env", "GOVERSION"], env=env).strip()
    stamp = _read_stamp(bindir)
    failures: list[str] = []
    for tool in tools:
        if only and tool.name not in only:
            continue
        binary = bindir / tool.name
        key = tool.key(toolchain)
        fresh = (not force and stamp.get(tool.name) == key and binary.is_file()
                 and (tool.sha256 is None or file_sha256(binary) == tool.sha256))
        if fresh:
            print(f"tools: {tool.name} {tool.version} up to date", file=sys.stderr)
            continue
        print(f"tools: building {tool.name} {tool.package}@{tool.version} with {go_version} …", file=sys.stderr)
        started = time.monotonic()
        try:
            _build(tool, bindir=bindir, env=env)
        except ToolError as exc:
            failures.append(f"{tool.name}: {exc}")
            continue
        seconds = time.monotonic() - started
        digest = file_sha256(binary)
        print(f"tools: built {tool.name} in {seconds:.0f} s: {digest}", file=sys.stderr)
        entry = data["tools"][tool.name]
        if record:
            entry["sha256"], entry["go"] = digest, go_version
        elif tool.sha256 is not None and digest != tool.sha256:
            failures.append(f"{tool.name}: built {digest} with {go_version}, but {TOOLS_JSON.name} records "
                            f"{tool.sha256} (built with {tool.go}): the build is not reproducible here, or the "
                            "Go version differs (hint: if the change is intended, rerun with --record and commit)")
            binary.unlink()
            continue
        stamp[tool.name] = key
        _write_json(bindir / STAMP, stamp)
    if record:
        _write_json(TOOLS_JSON, data)
    if failures:
        raise ToolError("\n".join(failures))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python tools/go/build.py [--record] [--force] [TOOL …]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("tools", nargs="*", help="only these tools (default: all)")
    parser.add_argument("--record", action="store_true", help="(re)write the sha256 and Go version in tools.json")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp says up to date")
    args = parser.parse_args(argv)
    if shutil.which("go") is None:
        print("tools: error: no 'go' on PATH\nhint: install Go 1.26 (https://go.dev/dl/)", file=sys.stderr)
        return 1
    try:
        return build_all(record=args.record, only=args.tools, force=args.force)
    except ToolError as exc:
        print(f"tools: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
