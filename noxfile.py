"""Sessions people and CI run: ``nox -s reproduce`` (the main job), ``nox -s lock``, ``nox -s tests``.

Every session installs the project's dependencies from ``requirements/*.txt`` with
``--require-hashes`` (exact versions, hashed wheels) and runs the package from the checkout, so
what renders here is what renders in CI. Reuse an environment offline with ``nox -R -s reproduce``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["reproduce"]
nox.options.error_on_missing_interpreters = True

RUN_REQUIREMENTS = "requirements/run.txt"
DEV_REQUIREMENTS = "requirements/dev.txt"
#: The Dagger SDK (optional group ``dagger``), constrained to run.txt's pins; installed for ``--backend dagger``.
DAGGER_REQUIREMENTS = "requirements/dagger.txt"


def _install(session: nox.Session, requirements: str) -> None:
    session.install("--require-hashes", "--only-binary", ":all:", "-r", requirements)


def _backend(posargs: list[str]) -> str:
    """The ``--backend`` the session's arguments ask for (``local`` when none)."""
    for index, arg in enumerate(posargs):
        if arg == "--backend" and index + 1 < len(posargs):
            return posargs[index + 1]
        if arg.startswith("--backend="):
            return arg.partition("=")[2]
    return "local"


def _pipeline(session: nox.Session, *args: str) -> None:
    _install(session, RUN_REQUIREMENTS)
    if _backend(session.posargs) == "dagger":
        _install(session, DAGGER_REQUIREMENTS)
    session.run("python", "-m", "pipeline", *args, *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Render every recipe twice in varied sandboxes and check both against the committed locks."""
    _pipeline(session, "reproduce")


@nox.session(name="reproduce-dagger", default=False)
def reproduce_dagger(session: nox.Session) -> None:
    """Reproduce in containers on a Dagger engine: dagger run nox -s reproduce-dagger."""
    _install(session, RUN_REQUIREMENTS)
    _install(session, DAGGER_REQUIREMENTS)
    session.run("python", "-m", "pipeline", "reproduce", "--backend", "dagger", *session.posargs)


def _with_registry(session: nox.Session, *command: str) -> None:
    """Run ``command`` while the catalog's images are served on 127.0.0.1:5001 (started, filled, stopped)."""
    session.run("python", "-m", "lab", "run", "--", *command)


@nox.session
def lock(session: nox.Session) -> None:
    """Serve our images locally, render and resolve every recipe, rewrite lockfiles/ and what derives from them."""
    _install(session, RUN_REQUIREMENTS)
    if _backend(session.posargs) == "dagger":
        _install(session, DAGGER_REQUIREMENTS)
    _with_registry(session, "python", "-m", "pipeline", "lock", *session.posargs)
    # Everything published from the locks follows them in the same step, so qualify stays green.
    session.run("python", "-m", "pipeline", "bom")
    session.run("python", "-m", "pipeline", "provenance")
    session.run("python", "-m", "pipeline", "policies")


@nox.session(default=False)
def qualify(session: nox.Session) -> None:
    """Every gate: reproduce, pinning gates, BOM/doc/policy freshness; what a new component must pass."""
    _pipeline(session, "qualify")


@nox.session(default=False)
def registry(session: nox.Session) -> None:
    """The local registry with our images on 127.0.0.1:5001: nox -s registry -- start|fill|status|stop."""
    _install(session, RUN_REQUIREMENTS)
    session.run("python", "-m", "lab", *(session.posargs or ["start"]))


@nox.session(default=False)
def drift(session: nox.Session) -> None:
    """Re-check every locked tag and chart version against its source: nox -s drift -- --fail-on-drift."""
    _install(session, RUN_REQUIREMENTS)
    _with_registry(session, "python", "-m", "pipeline", "drift", *session.posargs)


@nox.session(default=False)
def bom(session: nox.Session) -> None:
    """CycloneDX 1.6 BOMs under bom/ and docs/container-images.md, from the locks."""
    _pipeline(session, "bom")


@nox.session(default=False)
def mirror(session: nox.Session) -> None:
    """The air-gap mirror list: nox -s mirror -- list --format text|json|hauler|zarf."""
    _pipeline(session, "mirror")


@nox.session(default=False)
def provenance(session: nox.Session) -> None:
    """docs/provenance-matrix.md, then every locked digest's signatures checked in the local registry."""
    _install(session, RUN_REQUIREMENTS)
    session.run("python", "-m", "pipeline", "provenance")
    _with_registry(session, "python", "-m", "pipeline", "provenance", "--verify", *session.posargs)


@nox.session(default=False)
def policies(session: nox.Session) -> None:
    """Kyverno and sigstore policy-controller admission policies under policies/, from the locks."""
    _pipeline(session, "policies")


@nox.session(default=False)
def images(session: nox.Session) -> None:
    """The image inventory of one recipe: nox -s images -- RECIPE [--why IMAGE]."""
    _pipeline(session, "images")


@nox.session
def recipes(session: nox.Session) -> None:
    """List the catalog's recipes with their overlay chains (pass --catalog DIR to list another)."""
    _pipeline(session, "recipes")


@nox.session(default=False)
def render(session: nox.Session) -> None:
    """Render one recipe: nox -s render -- RECIPE [--pinned] [--out DIR]."""
    _pipeline(session, "render")


@nox.session(name="post-render", default=False)
def post_render(session: nox.Session) -> None:
    """Helm post-renderer on stdin/stdout: nox -s post-render -- --lock LOCKFILE --component NAME."""
    _pipeline(session, "post-render")


@nox.session(venv_backend="none", default=False)
def tools(session: nox.Session) -> None:
    """Build the pinned Go tools (helm, crane, cosign, kyverno) into .cache/tools/bin, checking their sha256."""
    session.run("python3", "tools/go/build.py", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (starts real registries and chart repositories on 127.0.0.1)."""
    _install(session, DEV_REQUIREMENTS)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff over the package, the lab, the tests, the tool builder and this file; import-linter's layer contracts."""
    _install(session, DEV_REQUIREMENTS)
    session.run("ruff", "check", "pipeline", "lab", "tests", "tools/go", "noxfile.py")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the lab, the tests and this file."""
    _install(session, DEV_REQUIREMENTS)
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Speed and memory figures, each against a baseline measured in the same run."""
    _install(session, RUN_REQUIREMENTS)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(default=False)
def pin(session: nox.Session) -> None:
    """Regenerate requirements/*.txt (exact versions with hashes) from pyproject.toml."""
    session.install("pip-tools==7.6.2")
    common = ["--quiet", "--generate-hashes", "--strip-extras", "--allow-unsafe", "--no-emit-index-url",
              "--no-emit-find-links"]
    session.run("pip-compile", *common, "--output-file", RUN_REQUIREMENTS, "pyproject.toml")
    session.run("pip-compile", *common, "--extra", "test", "--extra", "lint",
                "--output-file", DEV_REQUIREMENTS, "pyproject.toml")
    session.run("pip-compile", *common, "--extra", "dagger", "--constraint", RUN_REQUIREMENTS,
                "--output-file", DAGGER_REQUIREMENTS, "pyproject.toml")
