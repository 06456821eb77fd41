"""The lockfile model: committed locks round-trip, every malformed lock is refused with its message and
line, ``line_of`` points at the right line, and no other module of the pipeline parses lock JSON."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import IntegrityError, LockError, PipelineError
from pipeline.lockfile import Lockfile, load
from pipeline.registry import ResolvedImage
from pipeline.vocabulary.digest import canonical_json, sha256
from tests.bom.locks import demo_lock
from tests.locks import fake_digest, images_lock, sealed_bytes, tampered
from tests.recipes.catalogs import line_of

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "lockfiles").glob("*.lock.json"))
SHOWN = "lockfiles/demo.lock.json"
HINT = "never edit lockfiles by hand: restore it (git checkout -- lockfiles/) or regenerate it with 'nox -s lock'"

APP_DIGEST = fake_digest("ghcr.io/example/app:1.0")
BUSYBOX_DIGEST = fake_digest("docker.io/library/busybox:1.36")


# ---- round trips ---------------------------------------------------------------------------------


def test_there_are_committed_locks() -> None:
    assert len(COMMITTED) >= 3


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_lock_round_trips_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    lock = load(path, display=f"lockfiles/{path.name}")
    assert lock.dumps() == raw and lock.raw == raw
    assert lock.name == path.name.removesuffix(".lock.json") and lock.display == f"lockfiles/{path.name}"
    assert Lockfile.from_bytes(lock.dumps(), display="again") == lock


def test_a_factory_lock_is_what_reading_its_bytes_gives() -> None:
    lock = demo_lock()
    assert Lockfile.from_bytes(lock.dumps(), display=SHOWN) == lock
    assert json.loads(lock.dumps())["digest"] == lock.digest == sha256(canonical_json(
        {k: v for k, v in lock.body().items() if k != "digest"}))


def test_a_resolved_image_reads_back_as_the_resolver_s_record() -> None:
    resolved_lock = images_lock("r", {"app": ["ghcr.io/example/app:1.0"]})
    unresolved_lock = images_lock("r", {"app": ["ghcr.io/example/app:1.0"]}, digests=False)
    images = [image for lock in (demo_lock(), resolved_lock, unresolved_lock) for _, image in lock.images()]
    assert {i.media_type is None for i in images} == {True, False}  # both kinds are checked
    for image in images:
        resolved = image.as_resolved()
        if image.digest is None or image.media_type is None or image.served_by is None:
            assert resolved is None
            continue
        assert resolved == ResolvedImage(ref=image.image, digest=image.digest, media_type=image.media_type, size=0,
                                         platforms=dict(image.platforms or ()), served_by=image.served_by)


def test_a_missing_file_is_a_lock_error(tmp_path: Path) -> None:
    with pytest.raises(LockError) as caught:
        load(tmp_path / "gone.lock.json", display="lockfiles/gone.lock.json")
    assert caught.value.message == "lockfile lockfiles/gone.lock.json does not exist"
    assert caught.value.hint == "run 'nox -s lock' and commit lockfiles/"


# ---- malformed locks -----------------------------------------------------------------------------

DEMO = demo_lock()
Edit = Callable[[dict[str, Any]], None]


def _sealed(edit: Edit) -> bytes:
    """The demo lock changed by ``edit`` and sealed again: a well-formed digest over a bad body."""
    body = DEMO.body()
    edit(body)
    return sealed_bytes(body)


def _app_image(index: int, **changes: Any) -> Edit:
    return lambda b: b["components"]["app"]["images"][index].update(changes)


def _pop(*path: str | int) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    return edit


def _another_engine(body: dict[str, Any]) -> None:
    body["inputs"]["options"]["kubeVersion"] = "1.34.0"
    body["inputs"]["digest"] = sha256(canonical_json({k: body["inputs"][k] for k in ("files", "options")}))


def _unsigned_digest(raw: bytes) -> str:
    return sha256(canonical_json({k: v for k, v in json.loads(raw).items() if k != "digest"}))


INPUTS = DEMO.body()["inputs"]
TAMPERED = tampered(DEMO, _app_image(1, digest=fake_digest("evil")))
BAD_JSON = b'{\n  "components": {},\n  oops\n}\n'


class Case:
    """One malformed lock: its bytes, the error, the message after 'lockfile <file>', and the line."""

    def __init__(self, name: str, raw: bytes, error: type[PipelineError], message: str, *,
                 at: str | None = None, above: str | None = None, line: int | None = None) -> None:
        self.name, self.raw, self.error, self.message = name, raw, error, message
        text = raw.decode()
        # at: the line holding the marker; above: the line before it (an object whose first key it is)
        self.line = line_of(text, at) if at else line_of(text, above) - 1 if above else line


MALFORMED = [
    Case("bad-digest", _sealed(_app_image(0, digest="sha256:abc")), LockError,
         ": components.app.images[0].digest: not a sha256 digest: 'sha256:abc' (expected 64 lowercase hex "
         "characters)", at='"digest": "sha256:abc"'),
    Case("sha512-digest", _sealed(lambda b: b["components"]["app"]["chart"].update(archive="sha512:" + "e" * 128)),
         LockError, f": components.app.chart.archive: 'sha512:{'e' * 128}' is not a sha256 digest",
         at='"archive": "sha512:'),
    Case("unknown-key", _sealed(_app_image(0, tag="1.36")), LockError,
         ": components.app.images[0].tag: is not a lockfile field (lockVersion 1)", at='"tag": "1.36"'),
    Case("unknown-top-key", _sealed(lambda b: b.update(generatedAt="2026-01-01")), LockError,
         ": generatedAt: is not a lockfile field (lockVersion 1)", at='"generatedAt"'),
    Case("missing-key", _sealed(_pop("components", "app", "images", 0, "source")), LockError,
         ": components.app.images[0]: has no 'source'", above=f'"digest": "{BUSYBOX_DIGEST}"'),
    Case("missing-chart-archive", _sealed(_pop("components", "app", "chart", "archive")), LockError,
         ": components.app.chart: has no 'archive'", above='"name": "app"'),
    Case("images-not-a-list", _sealed(lambda b: b["components"]["app"].update(images={})), LockError,
         ": components.app.images: must be a list, not dict", at='"images": {}'),
    Case("bad-origin", _sealed(_app_image(0, origin="upstream")), LockError,
         ": components.app.images[0].origin: 'upstream' is not one of in-tree, chart-default",
         at='"origin": "upstream"'),
    Case("ref-does-not-parse", _sealed(_app_image(0, ref="Not A Ref")), LockError,
         ": components.app.images[0].ref: image reference 'Not A Ref' contains whitespace", at='"ref": "Not A Ref"'),
    Case("ref-not-in-normal-form", _sealed(_app_image(0, ref="busybox:1.36")), LockError,
         ": components.app.images[0].ref: 'busybox:1.36' is not in normal form ('docker.io/library/busybox:1.36')",
         at='"ref": "busybox:1.36"'),
    Case("digest-against-the-reference", _sealed(lambda b: b["components"]["oci-app"]["images"][1].update(
        digest=fake_digest("other"))), LockError,
         f": components.oci-app.images[1].digest: {fake_digest('other')} differs from the digest the reference "
         "itself pins", at=f'"digest": "{fake_digest("other")}"'),
    Case("partial-resolved-keys", _sealed(_pop("components", "app", "images", 1, "servedBy")), LockError,
         ": components.app.images[1]: has mediaType, platforms but not all of mediaType, platforms, servedBy",
         above=f'"digest": "{APP_DIGEST}"'),
    Case("order-names-a-ghost", _sealed(lambda b: b["recipe"]["order"].append("ghost")), LockError,
         ": recipe.order: names 'ghost', which is not exactly one of the components", at='"order": ['),
    Case("order-misses-a-component", _sealed(lambda b: b["recipe"]["order"].remove("config")), LockError,
         ": recipe.order: names 'config', which is not exactly one of the components", at='"order": ['),
    Case("inputs-digest", _sealed(lambda b: b["inputs"].update(digest=fake_digest("inputs"))), LockError,
         f": inputs.digest: {fake_digest('inputs')} is not the digest of the inputs it lists ({INPUTS['digest']})",
         at=f'"digest": "{fake_digest("inputs")}"'),
    Case("engine-options", _sealed(_another_engine), LockError,
         ": engine.kubeVersion: the engine's kubeVersion and apiVersions differ from inputs.options",
         at='"kubeVersion": "1.33.0"'),
    Case("lock-version-2", _sealed(lambda b: b.update(lockVersion=2)), LockError,
         " has lockVersion 2; this tool reads version 1", at='"lockVersion": 2'),
    Case("non-canonical-bytes", json.dumps(DEMO.body(), indent=4, sort_keys=True).encode() + b"\n",
         IntegrityError, " is not in canonical form (reformatted by hand or a tool)"),
    Case("bad-json", BAD_JSON, IntegrityError,
         " is not valid JSON (Expecting property name enclosed in double quotes: line 3 column 3 (char 24))", line=3),
    Case("not-an-object", b"[]\n", IntegrityError,
         " is missing 'components', 'digest', 'engine', 'inputs', 'lockVersion', 'recipe', 'volatile'"),
    Case("wrong-self-digest", TAMPERED, IntegrityError,
         f" fails its integrity check: recorded digest {DEMO.digest} but the body hashes to "
         f"{_unsigned_digest(TAMPERED)} (edited by hand or corrupted)", at=f'"digest": "{DEMO.digest}"'),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c.name for c in MALFORMED])
def test_malformed_locks_are_refused(case: Case) -> None:
    with pytest.raises(case.error) as caught:
        Lockfile.from_bytes(case.raw, display=SHOWN)
    error = caught.value
    assert type(error) is case.error
    assert error.message == f"lockfile {SHOWN}{case.message}"
    assert (str(error.path), error.line) == (SHOWN, case.line)
    assert error.hint is not None and "nox -s lock" in error.hint
    if case.message.startswith(": "):  # a bad entry: the one hint for hand edits
        assert error.hint == HINT


def test_a_malformed_lock_on_disk_is_named_by_its_display_path(tmp_path: Path) -> None:
    path = tmp_path / "demo.lock.json"
    path.write_bytes(TAMPERED)
    with pytest.raises(IntegrityError) as caught:
        load(path, display=SHOWN)
    assert caught.value.message.startswith(f"lockfile {SHOWN} fails its integrity check")
    assert caught.value.diagnostics().startswith(f"{SHOWN}:{line_of(TAMPERED.decode(), DEMO.digest)}: ")


# ---- line_of -------------------------------------------------------------------------------------


def test_line_of_points_at_the_value() -> None:
    text = DEMO.dumps().decode()
    lines = text.split("\n")
    assert DEMO.line_of() == 1
    assert DEMO.line_of("digest") == line_of(text, f'"digest": "{DEMO.digest}"')
    assert DEMO.line_of("recipe", "order") == line_of(text, '"order": [')
    assert DEMO.line_of("components", "app", "images", 1, "ref") == line_of(text, '"ref": "ghcr.io/example/app:1.0"')
    oci_app = line_of(text, '"oci-app": {')  # busybox is in app too: the one after oci-app starts
    assert DEMO.line_of("components", "oci-app", "images", 0, "ref") == next(
        n for n, line in enumerate(lines, start=1) if n > oci_app and '"ref": "docker.io/library/busybox:1.36"' in line)
    assert lines[(DEMO.line_of("components", "app", "images", 0) or 0) - 1] == "        {"
    assert lines[(DEMO.line_of("volatile", 0, "name") or 0) - 1].strip() == '"name": "app-cert",'
    # a step that is not there: the line of the deepest value reached
    assert DEMO.line_of("components", "nope", "images") == line_of(text, '"components": {')
    assert DEMO.line_of("components", "app", "images", 9) == DEMO.line_of("components", "app", "images")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_line_of_finds_every_image_of_a_committed_lock(path: Path) -> None:
    lock = load(path)
    lines = path.read_text().split("\n")
    for component in lock.ordered():
        assert lines[(lock.line_of("components", component.name) or 0) - 1] == f'    "{component.name}": {{'
        for index, image in enumerate(component.images):
            line = lock.line_of("components", component.name, "images", index, "ref")
            assert line is not None and lines[line - 1].strip() == f'"ref": "{image.ref}",'


# ---- one reader ----------------------------------------------------------------------------------

PIPELINE = ROOT / "pipeline"

#: The modules that parse JSON with the json module, each with what it parses (none of it a lock).
JSON_READERS = {
    "pipeline/bundle/export.py": "manifests and indexes fetched for the bundle (lockfiles go through the model)",
    "pipeline/bundle/verify.py": "the bundle's index.json, manifests, bundle.json and signature payloads "
                                 "(the carried lockfiles go through Lockfile.from_bytes)",
    "pipeline/bundle/relocate.py": "the bundle's index.json and manifests, to push them",
    "pipeline/lockfile.py": "the lockfile model itself: the one reader of lockfiles/*.lock.json",
    "pipeline/render/engine.py": "the Helm SDK's JSON answers (release and rendered files)",
    "pipeline/render/identity.py": "tools/go/tools.json, for the pinned helm binary of --engine helm-cli, and "
                                   "the engine-digest memo in the cache",
    "pipeline/relock.py": "the lock cache's index (recipe keys, lock keys, lockfile digests; a lockfile's "
                          "bytes are only hashed)",
    "pipeline/registry/client.py": "registry manifests, indexes and distribution error bodies",
    "pipeline/registry/auth.py": "Docker config.json and token-server replies",
    "pipeline/charts/oci.py": "OCI chart manifests",
    "pipeline/bom/cyclonedx.py": "a BOM it wrote, read back to check the round trip",
    "pipeline/provenance/interface.py": "a raw OCI manifest's body",
    "pipeline/provenance/registry.py": "referrers index replies",
    "pipeline/provenance/verify.py": "signature payloads, DSSE envelopes and in-toto statements",
    "pipeline/provenance/keyless.py": "Sigstore bundles",
    "pipeline/render/cache.py": "render-cache index entries (stream digest and engine identity; never a lock)",
    "pipeline/images/cache.py": "discovery-cache entries (the images found in a render; never a lock)",
    "pipeline/attest/dsse.py": "DSSE envelopes and key-signed Sigstore bundles of our attestations",
    "pipeline/attest/statement.py": "the in-toto statement a verified attestation signs",
    "pipeline/backends/podman.py": "its own step-cache records (exit code, output files, report tails)",
}


def _modules() -> list[tuple[str, ast.Module]]:
    return [(p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(), filename=str(p)))
            for p in sorted(PIPELINE.rglob("*.py"))]


def _json_calls(tree: ast.Module) -> list[int]:
    """Lines of ``json.load``/``json.loads`` calls and of ``load``/``loads`` imported from json."""
    out = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "json"
           and any(a.name in {"load", "loads"} for a in node.names)]
    out += [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in {"load", "loads"}
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"]
    return out


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef))]
    return {id(n.body[0].value) for n in nodes if n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant) and isinstance(n.body[0].value.value, str)}


def test_only_the_known_modules_parse_json() -> None:
    readers = {name for name, tree in _modules() if _json_calls(tree)}
    assert readers == set(JSON_READERS), "a module started (or stopped) parsing JSON: if it reads a lock, use " \
                                         "pipeline.lockfile.load; otherwise list it in JSON_READERS with what it reads"


def test_no_module_but_the_model_names_the_lock_format() -> None:
    # lockfiles are found with lockfile.LOCK_SUFFIX / lock_path and read with lockfile.load; "lockVersion"
    # and ".lock.json" in code (not in docstrings) outside the model mean a second reader.
    found = []
    for name, tree in _modules():
        if name == "pipeline/lockfile.py":
            continue
        docstrings = _docstrings(tree)
        found += [f"{name}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and ("lockVersion" in node.value or ".lock.json" in node.value)]
    assert found == []


def test_the_scan_sees_what_it_looks_for() -> None:
    tree = ast.parse('"""doc: lockfiles/x.lock.json"""\nimport json\nfrom json import loads\n'
                     'def f(p):\n    """lockVersion"""\n    return json.load(open(p))["lockVersion"]\n')
    assert _json_calls(tree) == [3, 6]
    docstrings = _docstrings(tree)
    assert [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docstrings] == [
        "lockVersion"]


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "lockfiles").glob("*.lock.json")),
                         ids=lambda p: p.name)
def test_seal_writes_the_bytes_of_the_long_way(path: Path) -> None:
    """``seal`` splices the digest into the unsigned serialisation: the same bytes as ``dumps()``."""
    from pipeline.lockfile import seal

    lock = load(path)
    again = seal(recipe=lock.recipe, inputs=lock.inputs, engine=lock.engine, components=list(lock.ordered()),
                 volatile=lock.volatile)
    assert again.raw == again.dumps() == path.read_bytes()
    assert again.digest == lock.digest
