"""Hostile and silent registries (issue 17, item 4 and the redaction of item 3)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import pytest

from pipeline.errors import ResolveError
from pipeline.registry import RegistryClient, RetryPolicy, Transport
from pipeline.registry.interface import TamperingError
from pipeline.registry.transport import DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEADLINE, DEFAULT_READ_TIMEOUT, redact_text
from pipeline.vocabulary.reference import ImageRef
from tests.servers import QuietHandler, silent_server, start_server

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                       "layers": []}).encode()
LIE = "sha256:" + "0" * 64


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers."""
    with silent_server(backlog=16) as host:
        yield host


def test_the_default_deadline_fails_a_silent_registry_within_30_seconds() -> None:
    assert DEFAULT_DEADLINE <= 30
    assert DEFAULT_CONNECT_TIMEOUT <= DEFAULT_READ_TIMEOUT <= DEFAULT_DEADLINE


def test_a_silent_registry_fails_at_the_configured_deadline(silent_registry: str) -> None:
    transport = Transport(error=ResolveError, timeout=0.5, connect_timeout=0.5, deadline=1.5,
                          retry=RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.02))
    client = RegistryClient(transport=transport)
    started = time.monotonic()
    with pytest.raises(ResolveError) as info:
        client.resolve(ImageRef.parse(f"{silent_registry}/demo/app:1.0"))
    elapsed = time.monotonic() - started
    transport.close()
    assert elapsed < 5
    assert "no complete answer within the 1.5 s deadline per request" in info.value.message
    assert info.value.hint is not None and "check that the server is up and answering" in info.value.hint


class _Lying(QuietHandler):
    """HEAD announces a digest the registry does not serve; GET by tag serves other bytes."""

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        oci = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if self.path == "/v2/":
            self.answer(200, b"{}", {})
        elif self.path.endswith("/manifests/1.0"):
            self.answer(200, MANIFEST, {**oci, **({"Docker-Content-Digest": LIE} if self.command == "HEAD" else {})})
        else:
            self.answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}', {})


def test_a_digest_header_that_does_not_match_the_bytes_is_tampering_not_a_missing_image() -> None:
    transport = Transport(error=ResolveError, retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002))
    with start_server(_Lying) as served, transport:
        host = served.host
        with pytest.raises(TamperingError) as info:
            RegistryClient(transport=transport).resolve(ImageRef.parse(f"{host}/demo/app:1.0"))
    actual = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert info.value.message == (
        f"registry '{host}' announced {LIE} for '{host}/demo/app:1.0' (Docker-Content-Digest of HEAD), but the "
        f"manifest it serves for that tag hashes to {actual}; refused as tampering")
    assert "HTTP 404" not in str(info.value)


@pytest.mark.parametrize(("text", "secret"), [
    ('{"errors":[{"code":"UNAUTHORIZED","message":"bad Authorization: Basic dXNlcjpodW50ZXIy"}]}', "dXNlcjpodW50ZXIy"),
    ("Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln was refused", "eyJhbGciOiJFUzI1NiJ9"),
    ('{"token": "s3cr3t-token", "expires_in": 60}', "s3cr3t-token"),
    ('{"password":"hunter2"}', "hunter2"),
    ("access_token=abc123&x=1", "abc123"),
    ("https://user:pw@example.com/v2/", "pw@"),
])
def test_credentials_are_redacted_from_response_texts(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert "<redacted>" in redacted or secret == "pw@"
