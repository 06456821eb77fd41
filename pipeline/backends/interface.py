"""The execution-backend axis: a stage is handed to a backend as a :class:`Plan`, and comes back as
:class:`Outputs`.

Contract:

- input: a :class:`StagePlan`, built and validated once on the host: the stage, its recipes, the
  host workspace, the stage's options (``keep_going``, ``check``: the local backend's) and the
  outputs expected back (with their digests when known). A container backend needs a :class:`Plan`,
  the stage plan with its container part (:func:`~pipeline.backends.plan.build_plan`): the base
  image pinned by digest, the project's pinned wheels, every input directory with the digest of its
  files, the allow-listed environment, one :class:`Step` per recipe (its command and its own
  inputs: the unit a container backend runs, in parallel, and caches by content); handed a plan
  without it, it raises :class:`~pipeline.errors.BackendError` (:func:`container_plan`). The local
  backend runs the stage plan of :func:`~pipeline.backends.plan.local_plan`, or any plan's host view;
- ``Backend.run`` executes the plan and returns :class:`Outputs`: the exit code of the stage, the
  files of the plan's output directory (name → bytes) and the tails of stdout and stderr. A
  container backend runs every step and hands the step results to
  :func:`~pipeline.backends.plan.assemble`, which puts them together on the host exactly as the
  local backend does (for ``lock``: images resolved on the host, which has the network the
  containers lack). A backend never writes into the host workspace itself except as the stage does
  today (the local backend runs the stage in-process); the CLI applies outputs with
  :func:`~pipeline.backends.plan.write_outputs`;
- a backend checks what it returns against the plan (:func:`~pipeline.backends.plan.check_outputs`):
  missing, unexpected or different files raise :class:`OutputMismatchError`;
- errors: :class:`~pipeline.errors.BackendError` (exit 2) when the backend cannot run the plan at
  all (no engine, an input changed since the plan was made); :class:`OutputMismatchError` (exit 1, a
  failed reproducibility gate) when it ran and produced other bytes than expected.

A stage never knows which backend runs it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import BackendError
from ..vocabulary.digest import Digest
from ..vocabulary.reference import ImageRef

if TYPE_CHECKING:
    from ..recipes.compose import Catalog
    from ..stages import Workspace

__all__ = [
    "TAIL_CHARS",
    "Backend",
    "BackendName",
    "ExpectedOutputs",
    "FileMount",
    "Mount",
    "OutputMismatchError",
    "Outputs",
    "Pin",
    "Plan",
    "Stage",
    "StagePlan",
    "Step",
    "Wheels",
    "container_plan",
    "tail",
]

#: How much of a stage's stdout and stderr a backend hands back (the end is what matters).
TAIL_CHARS = 65536


class Stage(enum.StrEnum):
    """The stages a backend can run: ``lock`` (compose, fetch, render, lock) and ``reproduce``."""

    LOCK = "lock"
    REPRODUCE = "reproduce"


class BackendName(enum.StrEnum):
    """The backends ``--backend`` selects: in-process, a Dagger engine, or a Docker-compatible CLI."""

    LOCAL = "local"
    DAGGER = "dagger"
    PODMAN = "podman"
    DOCKER = "docker"


class OutputMismatchError(BackendError):
    """A backend ran the stage, and what came back differs from what the plan expected. Exit 1."""

    exit_code = 1


def _absolute(path: PurePosixPath, what: str) -> None:
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{what} {str(path)!r} must be an absolute container path without '..'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """A host directory the stage reads, placed at ``target`` in the container.

    ``digest`` is :func:`~pipeline.vocabulary.digest.sha256_of_entries` over the directory's files (relative
    POSIX path → bytes), leaving out any path with a component in ``skip``. ``read_only`` mounts
    the directory read-only; otherwise it is copied into the container's own filesystem, writable
    there (the stage's cache). Either way the host directory is never written.
    """

    target: PurePosixPath
    source: Path
    digest: Digest
    read_only: bool = True
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _absolute(self.target, "mount target")
        if not self.source.is_absolute():
            raise ValueError(f"mount source {str(self.source)!r} must be an absolute host path")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileMount:
    """One host file placed read-only at ``target`` (the only file of its directory in the container)."""

    target: PurePosixPath
    source: Path
    digest: Digest

    def __post_init__(self) -> None:
        _absolute(self.target, "file mount target")
        if not self.source.is_absolute():
            raise ValueError(f"file mount source {str(self.source)!r} must be an absolute host path")


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One container run of a plan: one recipe, its command, the files only it reads, what it must produce.

    ``catalog`` are the recipe's own catalog inputs (every file its lock records a digest of: registry,
    overlays, mixins, values, manifests, config, local charts), placed read-only under the plan's
    catalog directory, and nothing else of the catalog; ``files`` are other files placed read-only
    (``reproduce``: the recipe's own lockfile); ``outputs`` names the files expected in the plan's
    output directory after the run.
    """

    name: str
    argv: tuple[str, ...]
    catalog: tuple[FileMount, ...] = ()
    files: tuple[FileMount, ...] = ()
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError(f"step {self.name!r} has an empty argv")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One line of a hashed requirements file: ``name==version`` and the hashes pip accepts."""

    name: str
    version: str
    hashes: tuple[Digest, ...]

    def __post_init__(self) -> None:
        if not self.hashes:
            raise ValueError(f"requirement {self.name}=={self.version} has no --hash")


@dataclass(frozen=True, slots=True, kw_only=True)
class Wheels:
    """The project's pinned wheels: the requirements file, its pins, and the wheelhouse mount.

    The wheelhouse holds exactly one wheel per pin (its sha256 among the pin's hashes) and a copy of
    the requirements file as ``requirements.txt``; ``install`` is the pip command run in the
    container (no index, hashes required, binaries only).
    """

    requirements: Path
    requirements_digest: Digest
    pins: tuple[Pin, ...]
    wheelhouse: Mount
    install: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedOutputs:
    """What the stage must hand back.

    ``directory`` is the container directory exported after the run (``None``: the stage runs on the
    host, or produces no files, only its report and exit code). ``files`` names every file expected there, with its
    digest when known (``None``: unknown, the file is still checked by the stage's own rules, e.g.
    a lockfile's integrity digest). ``host`` is where :func:`write_outputs` puts them, and
    ``prune`` the glob of host files to remove when the stage did not produce them (a full lock
    removes lockfiles of recipes that no longer exist).
    """

    directory: PurePosixPath | None = None
    files: Mapping[str, Digest | None] = field(default_factory=dict)
    host: Path | None = None
    prune: str | None = None

    def __post_init__(self) -> None:
        if self.directory is not None:
            _absolute(self.directory, "output directory")
        for name in self.files:
            if not name or "/" in name or name in {".", ".."}:
                raise ValueError(f"expected output {name!r} must be a plain file name")


@dataclass(frozen=True, slots=True, kw_only=True)
class StagePlan:
    """The host's view of one stage run: what the local backend runs, and what every backend checks
    its outputs against.

    ``recipes`` are the recipes asked for (empty: all); ``keep_going`` and ``check`` are ``lock``'s
    options (``--keep-going``, ``--check``), honoured by the local backend.
    """

    stage: Stage
    recipes: tuple[str, ...]
    workspace: Workspace
    outputs: ExpectedOutputs
    keep_going: bool = False
    check: bool = False
    #: the catalog as the plan loaded it, so the local backend's stage does not read it again
    loaded: Catalog | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan(StagePlan):
    """Everything a container backend needs to run one stage, and nothing it may pick up on its own.

    The inherited fields are the host's view (what the local backend runs on); these are the
    container's view. ``environment`` is the complete, sorted allow-list of variables the plan
    sets; ``steps`` run the stage one recipe each (``python -m pipeline lock|reproduce … --recipe R``).
    """

    base_image: ImageRef
    platform: str
    wheels: Wheels
    project: Mount
    inputs: tuple[Mount, ...]
    environment: tuple[tuple[str, str], ...]
    workdir: PurePosixPath
    catalog: PurePosixPath
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if self.base_image.digest is None or not self.base_image.digest.startswith("sha256:"):
            raise ValueError(f"base image {self.base_image} is not pinned by a sha256 digest")
        names = [k for k, _ in self.environment]
        if names != sorted(set(names)):
            raise ValueError("environment must be sorted by name, each name once")
        targets = [m.target for m in (self.wheels.wheelhouse, self.project, *self.inputs)]
        if len(set(targets)) != len(targets):
            raise ValueError(f"two mounts share a target: {sorted(map(str, targets))}")
        _absolute(self.workdir, "workdir")
        if not self.steps:
            raise ValueError("a plan has at least one step")
        if len({s.name for s in self.steps}) != len(self.steps):
            raise ValueError("two steps share a name")
        _absolute(self.catalog, "catalog directory")
        for step in self.steps:
            outside = [str(f.target) for f in step.catalog if not f.target.is_relative_to(self.catalog)]
            if outside:
                raise ValueError(f"step {step.name!r} places catalog input {outside[0]} outside {self.catalog}")
            clash = {f.target for f in (*step.catalog, *step.files)} & set(targets)
            if clash:
                raise ValueError(f"step {step.name!r} places a file over a mount: {sorted(map(str, clash))}")

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """Every host directory the plan places in the container, in the order it places them."""
        return (self.wheels.wheelhouse, self.project, *self.inputs)


def tail(text: str, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text``, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit} earlier characters cut]\n" + text[-limit:]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outputs:
    """What a backend hands back: the stage's exit code, its output files and its stdout/stderr tails.

    ``cached`` names the steps a container backend served from its content-addressed cache.
    """

    exit_code: int
    files: Mapping[str, bytes] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    cached: tuple[str, ...] = ()


class Backend(abc.ABC):
    """Runs a :class:`Plan`; one implementation per execution environment."""

    name: BackendName

    def check_available(self) -> None:  # noqa: B027 - a hook: most backends can always run
        """Raise :class:`~pipeline.errors.BackendError` within seconds when this backend cannot run here."""

    @abc.abstractmethod
    def run(self, plan: StagePlan) -> Outputs:
        """Execute ``plan`` and return its checked outputs (see the module docstring)."""


def container_plan(plan: StagePlan, backend: BackendName) -> Plan:
    """``plan`` with its container part, which ``backend`` (a container backend) needs to run it."""
    if not isinstance(plan, Plan):
        raise BackendError(f"the {backend.value} backend runs the stage in containers, and this "
                           f"{plan.stage.value} plan has no container part (base image, wheels, steps)",
                           hint="build the plan with pipeline.backends.plan_for, not local_plan")
    return plan
