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
FUZZ_REQUIREMENTS = "requirements/fuzz.txt"


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
    if "--check" in session.posargs:
        return  # lock --check writes nothing, so nothing derived can have changed
    # Everything published from the locks follows them in the same step, so qualify stays green.
    session.run("python", "-m", "pipeline", "bom")
    session.run("python", "-m", "pipeline", "provenance")
    session.run("python", "-m", "pipeline", "policies")


@nox.session(default=False)
def diff(session: nox.Session) -> None:
    """What changes between two lock sets (default: --from origin/main): charts, images, rendered resources."""
    _install(session, RUN_REQUIREMENTS)
    args = session.posargs or ["--from", "origin/main"]
    session.run("python", "-m", "pipeline", "diff", *args, success_codes=[0, 1])


@nox.session(default=False)
def upgrade(session: nox.Session) -> None:
    """Move a chart pin (-- COMPONENT --to VERSION | --latest), relock what it affects, print the diff."""
    _install(session, RUN_REQUIREMENTS)
    _with_registry(session, "python", "-m", "pipeline", "upgrade", *session.posargs)


@nox.session(default=False)
def qualify(session: nox.Session) -> None:
    """Every gate: reproduce, pinning gates, BOM/doc/policy freshness; what a new component must pass."""
    _pipeline(session, "qualify")


@nox.session(default=False)
def registry(session: nox.Session) -> None:
    """The local registry with our images on 127.0.0.1:5001: nox -s registry -- start|fill|status|stop."""
    _install(session, RUN_REQUIREMENTS)
    session.run("python", "-m", "lab", *(session.posargs or ["start"]))


@nox.session(name="base-image", default=False)
def base_image(session: nox.Session) -> None:
    """Build the container base image from Debian packages (cached), push it to 127.0.0.1:5001, print its digest."""
    _install(session, RUN_REQUIREMENTS)
    session.run("python", "-m", "lab", "base-image", *session.posargs)


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
def bundle(session: nox.Session) -> None:
    """Air-gap bundle: nox -s bundle -- export --out B.tar | verify B.tar | import B.tar --to REGISTRY [--prefix P]."""
    _install(session, RUN_REQUIREMENTS)
    args = session.posargs or ["export", "--out", "bundle.tar"]
    if args[0] == "export":  # the locked images are served by the local registry while they are exported
        _with_registry(session, "python", "-m", "pipeline", "bundle", *args)
    else:
        session.run("python", "-m", "pipeline", "bundle", *args)


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
def attest(session: nox.Session) -> None:
    """Sign the locks, BOMs, policies and inventory: nox -s attest -- --key PEM | --key-env VAR | --keyless."""
    _pipeline(session, "attest")


@nox.session(name="verify-attestation", default=False)
def verify_attestation(session: nox.Session) -> None:
    """Verify attestations/ against the files and locks: -- --key PUB | --certificate-identity ID (and issuer)."""
    _pipeline(session, "verify-attestation")


@nox.session(default=False)
def images(session: nox.Session) -> None:
    """The image inventory of one recipe: nox -s images -- RECIPE [--why IMAGE]."""
    _pipeline(session, "images")


@nox.session(default=False)
def charts(session: nox.Session) -> None:
    """Every chart the catalog needs (repository, chart, version, recipes), fetching nothing: to fill mirrors."""
    _pipeline(session, "charts")


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
    # Measured as an installed package runs: with Python's bytecode cache (a shell that sets
    # PYTHONDONTWRITEBYTECODE would make every measured process compile the package again).
    session.run("python", "-m", "benchmarks", *session.posargs, env={"PYTHONDONTWRITEBYTECODE": ""})


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Fuzz the parsers of hostile input with atheris for SECONDS in all (default 60); fail on a crash."""
    _install(session, RUN_REQUIREMENTS)
    _install(session, FUZZ_REQUIREMENTS)
    session.run("python", "-m", "tests.fuzz", *session.posargs)


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
    session.run("pip-compile", *common, "--extra", "fuzz", "--constraint", RUN_REQUIREMENTS,
                "--output-file", FUZZ_REQUIREMENTS, "pyproject.toml")
