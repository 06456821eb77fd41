"""ImageRef: parsing and normalisation as container runtimes do it, round-trips, tricky cases."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipeline.images import ImageRef, ImageRefError

HEX = "0123456789abcdef"
SHA = "sha256:" + "a" * 64

# ---- generators following the distribution reference grammar ------------------------------

_alnum = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                      _alnum, st.lists(st.tuples(_separator, _alnum), max_size=2))
hostname = st.builds(lambda labels, tld: ".".join([*labels, tld]),
                     st.lists(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True),
                              min_size=1, max_size=2),
                     st.from_regex(r"[a-z]{2,5}", fullmatch=True))
registry = st.one_of(
    st.none(),
    st.just("docker.io"), st.just("index.docker.io"), st.just("registry-1.docker.io"),
    st.just("localhost"), st.builds(lambda p: f"localhost:{p}", st.integers(1, 65535)),
    hostname, st.builds(lambda h, p: f"{h}:{p}", hostname, st.integers(1, 65535)),
    st.builds(lambda p: f"[::1]:{p}", st.integers(1, 65535)),
)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digest = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.text(HEX, min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
)


@st.composite
def reference_text(draw: st.DrawFn) -> str:
    host = draw(registry)
    path = "/".join(draw(st.lists(component, min_size=1, max_size=3)))
    text = f"{host}/{path}" if host else path
    if draw(st.booleans()):
        text += ":" + draw(tag)
    if draw(st.booleans()):
        text += "@" + draw(digest)
    assume(len(text.split("@")[0].rsplit(":", 1)[0]) <= 200)
    return text


@given(reference_text())
def test_canonical_form_round_trips(text: str) -> None:
    ref = ImageRef.parse(text)
    assert ImageRef.parse(str(ref)) == ref
    assert str(ImageRef.parse(str(ref))) == str(ref)


@given(reference_text())
def test_familiar_form_names_the_same_image(text: str) -> None:
    ref = ImageRef.parse(text)
    assert ImageRef.parse(ref.familiar()) == ref


@given(reference_text())
def test_registry_is_explicit_and_docker_hub_names_are_qualified(text: str) -> None:
    ref = ImageRef.parse(text)
    assert ref.registry
    assert ref.registry not in ("index.docker.io", "registry-1.docker.io")
    if ref.registry == "docker.io":
        assert "/" in ref.repository
    assert str(ref).startswith(f"{ref.registry}/{ref.repository}")


@given(reference_text())
def test_pinned_means_a_sha256_digest(text: str) -> None:
    ref = ImageRef.parse(text)
    assert ref.pinned == (ref.digest is not None and ref.digest.startswith("sha256:"))


@given(reference_text(), digest)
def test_with_digest_replaces_only_the_digest(text: str, new: str) -> None:
    ref = ImageRef.parse(text)
    pinned = ref.with_digest(new)
    assert (pinned.registry, pinned.repository, pinned.tag, pinned.digest) == (ref.registry, ref.repository,
                                                                                ref.tag, new)
    assert ImageRef.parse(str(pinned)) == pinned


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_says_why(text: str) -> None:
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        why = str(exc)
        assert why, text
        return
    assert ImageRef.parse(str(ref)) == ref


# ---- a table of tricky cases ----------------------------------------------------------------

GOOD = [
    ("busybox", "docker.io", "library/busybox", None, None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("library/busybox", "docker.io", "library/busybox", None, None),
    ("docker.io/busybox", "docker.io", "library/busybox", None, None),
    ("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", None),
    ("registry-1.docker.io/pytorch/pytorch:2.7", "docker.io", "pytorch/pytorch", "2.7", None),
    ("pytorch/pytorch:2.7.1-cuda12.8", "docker.io", "pytorch/pytorch", "2.7.1-cuda12.8", None),
    ("localhost/app", "localhost", "app", None, None),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
    ("localhost:5001/recipe-lab/tuning-packages/tuning:2.1.3", "localhost:5001", "recipe-lab/tuning-packages/tuning",
     "2.1.3", None),
    ("registry.example.com:8443/team/app:1.0", "registry.example.com:8443", "team/app", "1.0", None),
    ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
    ("Registry.Example.com/app", "Registry.Example.com", "app", None, None),
    ("nvcr.io/nvidia/driver:580.95.05", "nvcr.io", "nvidia/driver", "580.95.05", None),
    (f"nvcr.io/nvidia/driver@{SHA}", "nvcr.io", "nvidia/driver", None, SHA),
    (f"ubuntu:24.04@{SHA}", "docker.io", "library/ubuntu", "24.04", SHA),
    ("app@sha512:" + "b" * 128, "docker.io", "library/app", None, "sha512:" + "b" * 128),
    ("app@blake3:" + "c" * 64, "docker.io", "library/app", None, "blake3:" + "c" * 64),
    ("a__b/c--d.e_f:_tag", "docker.io", "a__b/c--d.e_f", "_tag", None),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), GOOD, ids=[g[0][:40] for g in GOOD])
def test_tricky_references(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ImageRef.parse(str(ref)) == ref


BAD = [
    ("", "empty image reference"),
    ("   ", "empty image reference"),
    (" busybox", "surrounding whitespace"),
    ("Busybox", "must be lower case"),
    ("nvcr.io/NVIDIA/driver", "must be lower case"),
    ("{{ .Values.image }}", "unrendered template"),
    ("${IMAGE}", "unrendered template"),
    ("https://nvcr.io/nvidia/driver", "URL scheme"),
    ("busy box", "whitespace"),
    ("busybox:", "empty tag or digest"),
    ("busybox@", "empty tag or digest"),
    ("busybox@sha256:abc", "malformed"),
    ("busybox@sha256:" + "A" * 64, "sha256:<64 lowercase hex"),
    ("busybox@sha512:" + "a" * 64, "sha512:<128 lowercase hex"),
    ("/busybox", "empty path component"),
    ("a//b", "empty path component"),
    ("busybox:" + "x" * 129, "not a valid image reference"),
    ("x/" + "a" * 260, "longer than 255"),
]


@pytest.mark.parametrize(("text", "why"), BAD, ids=[b[0][:30] or "empty" for b in BAD])
def test_refused_references_say_why(text: str, why: str) -> None:
    with pytest.raises(ImageRefError, match=None) as info:
        ImageRef.parse(text)
    assert why in str(info.value)


def test_regression_tag_with_non_ascii_letter_is_refused() -> None:
    # Python's \w matched 'é'; the grammar's \w is ASCII only.
    with pytest.raises(ImageRefError):
        ImageRef.parse("busybox:é1")


def test_regression_short_sha512_digest_is_refused() -> None:
    with pytest.raises(ImageRefError, match="sha512"):
        ImageRef.parse("busybox@sha512:" + "a" * 32)


def test_regression_familiar_form_keeps_docker_io_before_a_host_like_namespace() -> None:
    ref = ImageRef.parse("docker.io/0.0/app:1")
    assert ref.familiar() == "docker.io/0.0/app:1"
    assert ImageRef.parse(ref.familiar()) == ref
    assert ImageRef.parse("docker.io/library/busybox:1").familiar() == "busybox:1"
    assert ImageRef.parse("docker.io/pytorch/pytorch").familiar() == "pytorch/pytorch"
