"""``qualify --attestation FILE``: the signed attestation is one more gate of qualify."""

from __future__ import annotations

import pytest

from pipeline.attest import STATEMENT_FILE
from tests.attest.conftest import Signed, run


@pytest.mark.slow
def test_qualify_verifies_the_attestation_and_fails_on_a_change_after_signing(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["qualify", "--attestation", "attestations/attestation.sigstore.json", "--key", str(signed.pub)]
    capsys.readouterr()
    assert run(signed.root, *argv) == 0
    out = capsys.readouterr().out
    assert "signed attestation: ok" in out and "qualify: PASS" in out
    statement = signed.out / STATEMENT_FILE
    statement.write_bytes(statement.read_bytes().replace(b"h100-any", b"h100-all", 1))
    assert run(signed.root, *argv) == 1
    out = capsys.readouterr().out
    assert "signed attestation: FAIL" in out and "qualify: FAIL" in out
    assert "attestations/attestation.intoto.json: differs from the statement the signature covers" in out
