"""Registry authentication: challenges, Docker config, basic and token auth against real registries."""

from __future__ import annotations

import base64
import json
import logging
import pickle
from pathlib import Path

import pytest

from pipeline.errors import ResolveError
from pipeline.images import ImageRef
from pipeline.registry import (
    Credentials,
    DockerConfig,
    RegistryConfig,
    Secret,
    docker_config_path,
    parse_www_authenticate,
)
from pipeline.registry.auth import Authenticator, Challenge
from pipeline.registry.transport import Transport
from tests.registry.conftest import ClientFactory
from tests.registry.skopeo import require_skopeo, skopeo
from tests.servers import (
    Registry,
    TokenRegistry,
    build_oci_image,
    push_oci_image,
    start_fault_proxy,
)

USER, PASSWORD = "alice", "s3cret-Pa55word"  # tests/conftest.py REGISTRY_USERS


def _auth_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _no_secrets(text: str, *secrets: str) -> None:
    for secret in (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), *secrets):
        assert secret not in text


# ---- WWW-Authenticate --------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/busybox:pull,push"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/busybox:pull,push"})]),
    ('Basic realm="test-realm"', [("basic", {"realm": "test-realm"})]),
    ('BEARER Realm="https://ghcr.io/token", SERVICE = "ghcr.io" ,scope="repository:a/b:pull"',
     [("bearer", {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:a/b:pull"})]),
    ('Bearer realm=https://r.example/token,service=reg',
     [("bearer", {"realm": "https://r.example/token", "service": "reg"})]),
    ('Bearer realm="https://r/t",scope="repository:a:pull repository:b:pull",error="insufficient_scope"',
     [("bearer", {"realm": "https://r/t", "scope": "repository:a:pull repository:b:pull",
                  "error": "insufficient_scope"})]),
    ('Basic realm="a \\"quoted\\", realm", Bearer realm="https://r/t"',
     [("basic", {"realm": 'a "quoted", realm'}), ("bearer", {"realm": "https://r/t"})]),
    ("Negotiate abc123==, Basic realm=\"x\"", [("negotiate", {}), ("basic", {"realm": "x"})]),
    ("", []),
])
def test_parse_www_authenticate(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert parse_www_authenticate(header) == tuple(Challenge(scheme=s, params=p) for s, p in expected)


# ---- secrets and Docker config -----------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret(PASSWORD)
    creds = Credentials(username=USER, password=secret)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(creds), str(creds)):
        _no_secrets(shown)
    assert repr(secret) == "'***'"
    assert repr(creds) == "Credentials(username='alice', password='***')"
    assert secret.reveal() == PASSWORD and secret == Secret(PASSWORD) and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert creds.basic() == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_docker_config_forms_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "auths": {
            "https://index.docker.io/v1/": _auth_entry("hub-user", "hub-pw"),
            "http://127.0.0.1:5000/": {"username": "local", "password": "pw:with:colons"},
            "ghcr.io": _auth_entry("gh", "p:w"),
            "nvcr.io": {},  # kept by a credential store: no credentials here
        },
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcloud"},
    }))
    config = DockerConfig.load(path)
    assert sorted(config.auths) == ["127.0.0.1:5000", "docker.io", "ghcr.io"]
    hub = config.credentials("registry-1.docker.io")
    assert hub is not None and (hub.username, hub.password.reveal()) == ("hub-user", "hub-pw")
    local = config.credentials("127.0.0.1:5000")
    assert local is not None and local.password.reveal() == "pw:with:colons"
    gh = config.credentials("GHCR.io")
    assert gh is not None and gh.password.reveal() == "p:w"
    assert config.credentials("nvcr.io") is None
    assert config.helper_for("gcr.io") == "gcloud" and config.helper_for("nvcr.io") == "desktop"
    assert config.path == str(path)
    _no_secrets(repr(config), "hub-pw", "pw:with:colons")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "Docker config {path} is not JSON (JSONDecodeError at line 1 column 2)"),
    ("[]", "Docker config {path} is not a JSON object"),
    ('{"auths": []}', "Docker config {path}: 'auths' is not an object"),
    ('{"auths": {"r.io": "x"}}', "Docker config {path}: entry 'r.io' is not an object"),
    ('{"auths": {"r.io": {"auth": "not base64 %%% s3cret-Pa55word"}}}',
     "Docker config {path}: entry 'r.io': 'auth' is not base64 of 'user:password'"),
    ('{"auths": {"r.io": {"auth": "' + base64.b64encode(b"s3cret-Pa55word").decode() + '"}}}',
     "Docker config {path}: entry 'r.io': 'auth' does not decode to 'user:password'"),
])
def test_bad_docker_config(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ResolveError) as caught:
        DockerConfig.load(path)
    assert str(caught.value) == message.format(path=path)
    assert caught.value.hint
    _no_secrets(caught.value.diagnostics())
    assert caught.value.__cause__ is None or PASSWORD not in str(caught.value.__cause__)


def test_docker_config_location(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": "/etc/dc", "HOME": "/h"}) == Path("/etc/dc/config.json")
    assert docker_config_path({"HOME": "/h"}) == Path("/h/.docker/config.json")
    assert docker_config_path({}, home=tmp_path) == tmp_path / ".docker" / "config.json"
    missing = tmp_path / "none.json"
    assert DockerConfig.load(missing, required=False).auths == {}
    with pytest.raises(ResolveError, match=f"Docker config {missing} does not exist"):
        DockerConfig.load(missing)


def test_credentials_are_not_sent_over_plain_http_to_a_remote_host() -> None:
    creds = DockerConfig.from_json({"auths": {"registry.example.com": _auth_entry(USER, PASSWORD)}})
    with Transport(error=ResolveError) as transport:
        auth = Authenticator(transport=transport, credentials=creds)
        with pytest.raises(ResolveError) as caught:
            auth.authenticate("registry.example.com", "repository:a:pull", 'Basic realm="r"', rejected=None,
                              what="manifest of 'registry.example.com/a:1'", base="http://registry.example.com")
        assert str(caught.value) == (
            "manifest of 'registry.example.com/a:1': credentials for registry 'registry.example.com' would be sent "
            "over plain HTTP to 'registry.example.com'; refused")
        insecure = Authenticator(transport=transport, credentials=creds,
                                 insecure=frozenset({"registry.example.com"}))
        assert insecure.authenticate("registry.example.com", "s", 'Basic realm="r"', rejected=None, what="m",
                                     base="http://registry.example.com") == creds.auths["registry.example.com"].basic()


# ---- basic auth (htpasswd) ---------------------------------------------------------------------


@pytest.mark.registry
def test_basic_auth_with_docker_config(basic_registry: Registry, make_client: ClientFactory, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    image = build_oci_image("basic")
    push_oci_image(basic_registry, "demo/app", "1.0", image)
    proxy = start_fault_proxy(basic_registry.url)  # to see which requests carried credentials
    try:
        config = tmp_path / "docker" / "config.json"
        config.parent.mkdir()
        config.write_text(json.dumps({"auths": {proxy.host: {"username": USER, "password": PASSWORD}}}))
        client = make_client(config=RegistryConfig(docker_config=str(config)))
        ref = ImageRef.parse(f"{proxy.host}/demo/app:1.0")
        resolved = client.resolve(ref)
        assert resolved.digest == image.digest and resolved.served_by == proxy.host
        assert client.manifest_exists(ref)
        # one challenge, then credentials sent up front on every request
        assert [auth for _, _, auth in proxy.requests] == [False] + [True] * (len(proxy.requests) - 1)
        require_skopeo()
        assert basic_registry.credentials is not None
        creds = ":".join(basic_registry.credentials)
        raw = skopeo("--raw", "--creds", creds, f"docker://{basic_registry.host}/demo/app:1.0")
        assert resolved.size == len(raw) and image.top == raw
    finally:
        proxy.stop()
    _no_secrets(caplog.text)


@pytest.mark.registry
def test_basic_auth_failures(basic_registry: Registry, make_client: ClientFactory,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    push_oci_image(basic_registry, "demo/app", "1.0", build_oci_image("basic"))
    ref = ImageRef.parse(f"{basic_registry.host}/demo/app:1.0")
    with pytest.raises(ResolveError) as anonymous:
        make_client().resolve(ref)
    assert str(anonymous.value) == (f"registry {basic_registry.host!r} refused anonymous access to manifest of "
                                    f"'{ref}' (HTTP 401)")
    assert anonymous.value.hint == (f"the registry wants credentials: run 'docker login {basic_registry.host}' or "
                                    "add them under 'auths' in a Docker config.json")
    wrong = DockerConfig.from_json({"auths": {basic_registry.host: _auth_entry(USER, "wrong-" + PASSWORD)}},
                                   path="/home/ci/.docker/config.json")
    with pytest.raises(ResolveError) as refused:
        make_client(credentials=wrong).resolve(ref)
    assert str(refused.value) == (f"registry {basic_registry.host!r} refused access to manifest of '{ref}' for "
                                  "user 'alice' (HTTP 401)")
    assert refused.value.hint == (f"check the credentials stored for {basic_registry.host!r} in "
                                  "/home/ci/.docker/config.json and that the user may pull this repository")
    for error in (anonymous.value, refused.value):
        _no_secrets(error.diagnostics(), "wrong-" + PASSWORD)
    _no_secrets(caplog.text, "wrong-" + PASSWORD)


# ---- token auth --------------------------------------------------------------------------------


@pytest.mark.token_registry
def test_anonymous_token_flow_and_cache(token_registry: TokenRegistry, make_client: ClientFactory,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry, tokens = token_registry.registry, token_registry.tokens
    images = {tag: build_oci_image(f"token-{tag}") for tag in ("1", "2", "3")}
    for tag, image in images.items():
        push_oci_image(registry, "demo/app", tag, image)
    push_oci_image(registry, "demo/other", "1", images["1"])
    before = len(tokens.hits)
    client = make_client()
    for tag, image in images.items():
        assert client.resolve(ImageRef.parse(f"{registry.host}/demo/app:{tag}")).digest == image.digest
    assert client.manifest_exists(ImageRef.parse(f"{registry.host}/demo/app:1"))
    assert client.tags(ImageRef.parse(f"{registry.host}/demo/app")) == ("1", "2", "3")
    assert client.resolve(ImageRef.parse(f"{registry.host}/demo/other:1")).digest == images["1"].digest
    hits = tokens.hits[before:]
    # one anonymous token per scope, reused for 3 resolves (12 requests), a HEAD and a tag list
    assert [(h.user, h.scopes, h.service, h.status) for h in hits] == [
        (None, ("repository:demo/app:pull",), "test-registry", 200),
        (None, ("repository:demo/other:pull",), "test-registry", 200),
    ]
    assert client.auth.token_fetches == 2
    token_text = tokens.server.signer(None, [])[:40]  # tokens share their header: never logged
    assert token_text.split(".")[0] not in caplog.text


@pytest.mark.token_registry
def test_tokens_expire(token_registry: TokenRegistry, make_client: ClientFactory) -> None:
    registry, tokens = token_registry.registry, token_registry.tokens
    push_oci_image(registry, "demo/app", "1", build_oci_image("expiry"))
    tokens.config.expires_in = 300
    now = [1000.0]
    client = make_client(clock=lambda: now[0])
    ref = ImageRef.parse(f"{registry.host}/demo/app:1")
    before = len(tokens.hits)
    client.resolve(ref)
    now[0] += 290.0  # within the lifetime (less a safety margin)
    client.resolve(ref)
    assert len(tokens.hits) == before + 1
    now[0] += 10.0  # 300 s after: expired
    client.resolve(ref)
    assert len(tokens.hits) == before + 2


@pytest.mark.token_registry
@pytest.mark.parametrize("fields", [("token",), ("access_token",)])
def test_token_with_credentials_from_docker_config(token_registry: TokenRegistry, make_client: ClientFactory,
                                                   tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   fields: tuple[str, ...]) -> None:
    caplog.set_level(logging.DEBUG)
    registry, tokens = token_registry.registry, token_registry.tokens
    image = build_oci_image("private")
    push_oci_image(registry, "private/app", "1", image)
    tokens.config.anonymous_pull = False
    tokens.config.fields = fields
    tokens.config.expires_in = None  # the spec's default lifetime (60 s) applies
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{registry.host}": _auth_entry(USER, PASSWORD)}}))
    ref = ImageRef.parse(f"{registry.host}/private/app:1")
    before = len(tokens.hits)
    resolved = make_client(credentials=DockerConfig.load(config)).resolve(ref)
    assert resolved.digest == image.digest
    assert [(h.user, h.scopes, h.status) for h in tokens.hits[before:]] == [
        ("alice", ("repository:private/app:pull",), 200)]
    _no_secrets(caplog.text)


@pytest.mark.token_registry
def test_token_refusals(token_registry: TokenRegistry, make_client: ClientFactory, tmp_path: Path,
                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry, tokens = token_registry.registry, token_registry.tokens
    push_oci_image(registry, "private/app", "1", build_oci_image("private"))
    tokens.config.anonymous_pull = False
    ref = ImageRef.parse(f"{registry.host}/private/app:1")
    with pytest.raises(ResolveError) as anonymous:
        make_client().resolve(ref)
    assert str(anonymous.value) == (f"manifest of '{ref}': the token service {tokens.realm} of registry "
                                    f"{registry.host!r} refused an anonymous token (HTTP 401)")
    assert "docker login" in (anonymous.value.hint or "")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {registry.host: _auth_entry(USER, "wrong-" + PASSWORD)}}))
    with pytest.raises(ResolveError) as wrong:
        make_client(credentials=DockerConfig.load(config)).resolve(ref)
    assert str(wrong.value) == (f"manifest of '{ref}': the token service {tokens.realm} of registry "
                                f"{registry.host!r} refused the credentials of user 'alice' (from {config}) "
                                "(HTTP 401)")
    assert wrong.value.hint == (f"check the user name and password stored for {registry.host!r}; run "
                                f"'docker login {registry.host}' to replace them")
    # an anonymous token is granted, but without pull access to this repository (insufficient_scope)
    tokens.config.anonymous_pull, tokens.config.public = True, frozenset({"public/app"})
    before = len(tokens.hits)
    with pytest.raises(ResolveError) as scope:
        make_client().resolve(ref)
    assert str(scope.value) == (f"registry {registry.host!r} refused anonymous access to manifest of '{ref}' "
                                "(HTTP 401)")
    assert len(tokens.hits) == before + 1, "one token asked for, not a loop"
    for error in (anonymous.value, wrong.value, scope.value):
        _no_secrets(error.diagnostics(), "wrong-" + PASSWORD)
    _no_secrets(caplog.text, "wrong-" + PASSWORD)
