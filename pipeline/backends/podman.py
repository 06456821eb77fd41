"""The podman backend (and, through the same Docker-compatible CLI, the docker backend).

Input: a :class:`~.interface.Plan`. What it runs, in order:

1. the base image by digest: ``image inspect`` finds it in the runtime's store, else ``pull`` fetches
   it (a registry on loopback is pulled from without TLS; the runtime checks the digest);
2. the stage image: the base image with the pinned wheels installed
   (``run --network none`` of the plan's ``pip install --no-index --require-hashes`` with the
   wheelhouse mounted read-only, then ``commit``), tagged ``localhost/recipe-pipeline-stage:<key>``
   where ``key`` derives from the base digest, the requirements digest, the install command and the
   environment: built once per machine and reused;
3. one container per :class:`~.interface.Step` (one recipe), several at a time:
   ``run --rm --network none --pull never`` with exactly the plan's environment (podman:
   ``--unsetenv-all``), the project, the recipe's own catalog inputs (and no other catalog file) and
   the step's own files mounted read-only, the
   content-addressed cache copied into a temporary directory (writable there, never written back),
   and an empty output directory; its exit code, output files and stdout/stderr are collected;
4. :func:`~.plan.assemble` puts the step results together on the host (as the local backend
   reports them) and checks them against the plan by digest.

Step cache: a step that exited 0 is recorded under ``<cache>/steps/<key>.json``, ``key`` being the
sha256 of the stage image id, the environment, the command and the digest of every mount and file;
the same step with the same inputs is then served from it (the engine-cache behaviour of Dagger,
content-addressed the same way). Failed steps are never cached.

podman runs as ``podman --runtime runc --cgroup-manager cgroupfs --events-backend file`` with its
store under ``~/.cache/recipe-pipeline/podman`` (``XDG_CACHE_HOME``), a ``containers.conf`` that sets
no default ulimits and an empty ``registries.conf`` (no search registries, no mirrors), in an
explicit minimal environment. docker uses the daemon its environment names (``DOCKER_HOST``).

Errors: :class:`~pipeline.errors.BackendError` (exit 2) within seconds when the CLI (or, for podman,
``runc``) is missing, and when a pull, the wheel install or the runtime itself fails (with the
stderr tail); what the stage reports inside a container (its own exit code and message) is relayed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import BackendError
from ..vocabulary.digest import canonical_json, sha256
from ..vocabulary.files import atomic_write
from .interface import Backend, BackendName, Outputs, Plan, StagePlan, Step, container_plan, tail
from .plan import assemble, verify_inputs

__all__ = ["RUNTIME_HINTS", "ContainerCliBackend", "find_cli", "machine_cache"]

#: What to install when the CLI is missing.
RUNTIME_HINTS = {
    BackendName.PODMAN: "install podman and runc (Debian/Ubuntu: 'apt-get install -y podman runc'), or use "
    "'--backend docker' where Docker runs, or drop '--backend podman' to use the local backend",
    BackendName.DOCKER: "install Docker (https://docs.docker.com/engine/install/) and start its daemon, or use "
    "'--backend podman', or drop '--backend docker' to use the local backend",
}
_PODMAN_CONF = "[containers]\ndefault_ulimits = []\n"
_PASS_ENV = {
    BackendName.PODMAN: ("HOME",),
    BackendName.DOCKER: ("HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH",
                         "DOCKER_TLS_VERIFY"),
}
_STAGE_REPOSITORY = "localhost/recipe-pipeline-stage"
#: Exit codes the runtime itself uses (125: the runtime failed; 126/127: the command cannot run).
_RUNTIME_FAILURES = {125, 126, 127}
_STEP_SECONDS = 3600
_PULL_SECONDS = 900


def machine_cache(environ: Mapping[str, str]) -> Path:
    """The machine-wide cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``recipe-pipeline``)."""
    root = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(root) / "recipe-pipeline"


def find_cli(name: BackendName, environ: Mapping[str, str]) -> str:
    """The path of the runtime's CLI, or :class:`BackendError` (exit 2) naming what is missing."""
    path = environ.get("PATH", os.defpath)
    cli = shutil.which(name.value, path=path)
    if cli is None:
        raise BackendError(f"the {name.value} backend needs the {name.value} CLI, and there is none on PATH",
                           hint=RUNTIME_HINTS[name])
    if name is BackendName.PODMAN and shutil.which("runc", path=path) is None:
        raise BackendError("the podman backend runs containers with runc, and there is none on PATH",
                           hint=RUNTIME_HINTS[name])
    return cli


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cli:
    """One runtime CLI: argv prefix and environment for every call."""

    name: BackendName
    prefix: tuple[str, ...]
    env: Mapping[str, str]

    def run(self, *args: str, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
        argv = [*self.prefix, *args]
        try:
            return subprocess.run(argv, env=dict(self.env), capture_output=True, text=True, check=False,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{what}: {self.name.value} did not finish within {timeout:.0f} s",
                               hint=f"argv: {' '.join(argv)}") from exc
        except OSError as exc:
            raise BackendError(f"{what}: {self.name.value} could not be started: {exc}",
                               hint=RUNTIME_HINTS[self.name]) from exc

    def checked(self, *args: str, timeout: float, what: str) -> str:
        done = self.run(*args, timeout=timeout, what=what)
        if done.returncode != 0:
            raise BackendError(f"{what}: {self.name.value} {args[0]} exited with {done.returncode}: "
                               f"{tail(done.stderr.strip(), 2000) or 'no output'}",
                               hint=f"argv: {' '.join((*self.prefix, *args))}")
        return done.stdout.strip()

    def image_id(self, ref: str) -> str | None:
        done = self.run("image", "inspect", "--format", "{{.Id}}", ref, timeout=60, what=f"looking up {ref}")
        return (done.stdout.strip() or None) if done.returncode == 0 else None


def _cli(name: BackendName, binary: str, tmp: Path, environ: Mapping[str, str]) -> _Cli:
    env = {"PATH": environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "TMPDIR": str(tmp)}
    env |= {k: environ[k] for k in _PASS_ENV[name] if k in environ}
    if name is BackendName.DOCKER:
        return _Cli(name=name, prefix=(binary,), env=env)
    state = machine_cache(environ) / "podman"
    (tmp / "containers.conf").write_text(_PODMAN_CONF, encoding="utf-8")
    (tmp / "registries.conf").write_text("", encoding="utf-8")
    env |= {"CONTAINERS_CONF": str(tmp / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(tmp / "registries.conf")}
    prefix = (binary, "--root", str(state / "storage"), "--runroot", str(state / "run"), "--runtime", "runc",
              "--cgroup-manager", "cgroupfs", "--events-backend", "file")
    return _Cli(name=name, prefix=prefix, env=env)


def _loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0].rsplit(":", 1)[0]
    return host in {"127.0.0.1", "localhost", "[::1]"}


def _volume(source: Path, target: PurePosixPath, *, read_only: bool) -> str:
    if ":" in str(source) or "," in str(source):
        raise BackendError(f"cannot mount {source}: the path holds ':' or ','",
                           hint="run from a directory whose path has neither")
    return f"{source}:{target}:ro" if read_only else f"{source}:{target}"


def _environment(cli: _Cli, plan: Plan) -> list[str]:
    args = ["--unsetenv-all"] if cli.name is BackendName.PODMAN else []
    for name, value in plan.environment:
        args += ["--env", f"{name}={value}"]
    return args


def _stage_image(cli: _Cli, plan: Plan) -> str:
    """The base image with the pinned wheels installed: found by its content key, else built and committed."""
    base = str(plan.base_image)
    key = sha256(canonical_json({"base": plan.base_image.digest, "requirements": plan.wheels.requirements_digest,
                                 "install": list(plan.wheels.install), "environment": list(plan.environment),
                                 "platform": plan.platform})).removeprefix("sha256:")[:32]
    tag = f"{_STAGE_REPOSITORY}:{key}"
    if (found := cli.image_id(tag)) is not None:
        return found
    if cli.image_id(base) is None:
        pull = ["pull", "--quiet", "--platform", plan.platform]
        if cli.name is BackendName.PODMAN and _loopback(base):
            pull.append("--tls-verify=false")
        cli.checked(*pull, base, timeout=_PULL_SECONDS, what=f"pulling the base image {base}")
    name = f"recipe-pipeline-install-{key[:16]}-{os.getpid()}"
    wheels = plan.wheels.wheelhouse
    done = cli.run("run", "--name", name, "--network", "none", "--pull", "never", *_environment(cli, plan),
                   "--volume", _volume(wheels.source, wheels.target, read_only=True), base, *plan.wheels.install,
                   timeout=_PULL_SECONDS, what="installing the pinned wheels")
    try:
        if done.returncode != 0:
            raise BackendError(
                f"installing the pinned wheels failed in the container (exit {done.returncode}): "
                f"{tail(done.stderr.strip(), 2000)}",
                hint="the base image and the wheels must fit each other: check "
                "[tool.recipe-pipeline.backends.container] in pyproject.toml against requirements/run.txt",
            )
        cli.checked("commit", name, tag, timeout=_PULL_SECONDS, what="saving the stage image")
    finally:
        cli.run("rm", "--force", name, timeout=120, what="removing the install container")
    found = cli.image_id(tag)
    if found is None:
        raise BackendError(f"the stage image {tag} was committed but cannot be found",
                           hint=f"check the {cli.name.value} store")
    return found


def _step_key(image: str, plan: Plan, step: Step, backend: BackendName) -> str:
    body = {
        "backend": backend.value, "image": image, "environment": list(plan.environment), "argv": list(step.argv),
        "workdir": str(plan.workdir),
        "mounts": [[str(m.target), m.digest, m.read_only] for m in (plan.project, *plan.inputs)],
        "files": [[str(f.target), f.digest] for f in (*step.catalog, *step.files)],
        "outputs": [str(plan.outputs.directory), list(step.outputs)],
    }
    return sha256(canonical_json(body)).removeprefix("sha256:")


def _cached(path: Path) -> Outputs | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        files = {str(k): base64.b64decode(v) for k, v in record["files"].items()}
        return Outputs(exit_code=int(record["exit_code"]), files=files, stdout=str(record["stdout"]),
                       stderr=str(record["stderr"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent or unreadable: the step runs again


def _remember(path: Path, outputs: Outputs) -> None:
    record = {"exit_code": outputs.exit_code, "stdout": outputs.stdout, "stderr": outputs.stderr,
              "files": {k: base64.b64encode(v).decode() for k, v in sorted(outputs.files.items())}}
    atomic_write(path, canonical_json(record))


def _run_step(cli: _Cli, image: str, plan: Plan, step: Step, tmp: Path) -> Outputs:
    work = Path(tempfile.mkdtemp(prefix="step.", dir=tmp))
    volumes: list[str] = []
    for mount in (plan.project, *plan.inputs):
        source = mount.source
        if not mount.read_only:  # copied: writable in the container, the host's never written
            source = work / "copy" / mount.target.relative_to("/").as_posix()
            shutil.copytree(mount.source, source, symlinks=True)
        volumes += ["--volume", _volume(source, mount.target, read_only=mount.read_only)]
    for file in (*step.catalog, *step.files):
        volumes += ["--volume", _volume(file.source, file.target, read_only=True)]
    out: Path | None = None
    if plan.outputs.directory is not None:
        out = work / "out"
        out.mkdir()
        volumes += ["--volume", _volume(out, plan.outputs.directory, read_only=False)]
    done = cli.run("run", "--rm", "--network", "none", "--pull", "never", *_environment(cli, plan), *volumes,
                   "--workdir", str(plan.workdir), image, *step.argv,
                   timeout=_STEP_SECONDS, what=f"the {plan.stage.value} step of {step.name!r}")
    if done.returncode in _RUNTIME_FAILURES:
        raise BackendError(f"{cli.name.value} could not run the {plan.stage.value} step of {step.name!r} "
                           f"(exit {done.returncode}): {tail(done.stderr.strip(), 2000) or 'no output'}",
                           hint=f"check that '{cli.name.value} run' works on this machine")
    files: dict[str, bytes] = {}
    if out is not None and done.returncode == 0:
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    shutil.rmtree(work, ignore_errors=True)
    return Outputs(exit_code=done.returncode, files=files, stdout=tail(done.stdout), stderr=tail(done.stderr))


class ContainerCliBackend(Backend):
    """Runs a plan's steps as containers with the podman or docker CLI (see the module docstring)."""

    def __init__(self, name: BackendName, *, parallel: int | None = None) -> None:
        if name not in RUNTIME_HINTS:
            raise ValueError(f"{name} is not a container CLI backend")
        self.name = name
        self.parallel = parallel

    def check_available(self) -> None:
        find_cli(self.name, os.environ)

    def run(self, stage_plan: StagePlan) -> Outputs:
        plan = container_plan(stage_plan, self.name)
        binary = find_cli(self.name, os.environ)
        verify_inputs(plan)
        with tempfile.TemporaryDirectory(prefix=f"recipe-pipeline-{self.name.value}.") as name:
            tmp = Path(name)
            cli = _cli(self.name, binary, tmp, os.environ)
            image = _stage_image(cli, plan)
            results = self._steps(cli, image, plan, tmp)
        return assemble(plan, results, backend=self.name.value, step_cache=True)

    def _steps(self, cli: _Cli, image: str, plan: Plan, tmp: Path) -> dict[str, Outputs]:
        store = plan.workspace.cache / "steps"
        results: dict[str, Outputs] = {}
        pending: list[tuple[Step, Path]] = []
        for step in plan.steps:
            path = store / f"{_step_key(image, plan, step, self.name)}.json"
            hit = _cached(path)
            if hit is not None:
                results[step.name] = dataclasses.replace(hit, cached=(step.name,))
            else:
                pending.append((step, path))
        workers = max(1, min(len(pending), self.parallel or os.cpu_count() or 1))

        def one(item: tuple[Step, Path]) -> tuple[str, Outputs]:
            step, path = item
            outputs = _run_step(cli, image, plan, step, tmp)
            if outputs.exit_code == 0:
                _remember(path, outputs)
            return step.name, outputs

        if pending:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results.update(pool.map(one, pending))
        return results
