"""The URLs soko server signs for the wandb client, and the ids it hands out."""

from __future__ import annotations

import pytest

from soko.errors import PermissionDeniedError, ValidationError
from soko.server.wandb.queries import decode_id, encode_id
from soko.server.wandb.signing import Signer, UsedNonces

SUBJECT = {"d": "md5:" + "0" * 32, "e": "team", "p": "vision"}


def test_a_token_grants_what_it_was_signed_for() -> None:
    signer = Signer(b"k" * 32)
    grant = signer.verify(signer.sign("put", SUBJECT, expires_in=60), "put")
    assert dict(grant.subject) == SUBJECT and grant.purpose == "put"


def test_tampered_foreign_expired_and_misused_tokens_are_refused() -> None:
    signer = Signer(b"k" * 32)
    token = signer.sign("put", SUBJECT, expires_in=60)
    payload, mac = token.split(".")
    other = Signer(b"x" * 32).sign("put", SUBJECT, expires_in=60)
    for bad in (f"{payload}A.{mac}", f"{payload}.{mac[:-2]}", other, "", "no-dot", f".{mac}"):
        with pytest.raises(PermissionDeniedError):
            signer.verify(bad, "put")
    with pytest.raises(PermissionDeniedError, match="not for a get"):
        signer.verify(token, "get")
    with pytest.raises(PermissionDeniedError, match="expired"):
        signer.verify(signer.sign("put", SUBJECT, expires_in=-1), "put")


def test_an_upload_token_is_taken_once_unless_released() -> None:
    signer, nonces = Signer(b"k" * 32), UsedNonces()
    grant = signer.verify(signer.sign("put", SUBJECT, expires_in=60), "put")
    nonces.claim(grant)
    with pytest.raises(PermissionDeniedError, match="used already"):
        nonces.claim(grant)
    nonces.release(grant)
    nonces.claim(grant)
    fresh = signer.verify(signer.sign("put", SUBJECT, expires_in=60), "put")
    nonces.claim(fresh)  # another URL for the same blob is another nonce


def test_upload_ids_are_stable_per_key_and_parts() -> None:
    signer = Signer(b"k" * 32)
    first = signer.upload_id("version", "md5:00")
    assert first == signer.upload_id("version", "md5:00")
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != signer.upload_id("version", "md5:01")
    assert first != Signer(b"x" * 32).upload_id("version", "md5:00")


def test_ids_round_trip_and_refuse_other_kinds() -> None:
    text = encode_id("Artifact", "0123abcd")
    assert decode_id("Artifact", text) == "0123abcd"
    for bad in (encode_id("Run", "0123abcd"), "%%%", "bm9jb2xvbg==", "", "\x80", "gA=="):
        with pytest.raises(ValidationError):
            decode_id("Artifact", bad)
