"""The commit request and its wire model carry the same fields: a field added to one and
forgotten in the other, or misspelt in a conversion, fails here."""

from __future__ import annotations

import dataclasses

from soko.core.digests import Algorithm
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.wire.requests import CommitIn

# On the wire the manifest travels as a blob: its digest and its entries' algorithm; a
# draft's manifest kept over a base version, as that version, the paths of it removed and
# the change as the blob.
MANIFEST_ON_THE_WIRE = {"manifest_blob", "algorithm", "base_version", "removed"}
# The versions the client read whose blobs the commit names (the server's possession
# check); the server computes what that lends the project, beside the request.
WIRE_ONLY = {*MANIFEST_ON_THE_WIRE, "sources"}


def _every_field_set() -> CommitRequest:
    """A request whose every field differs from its default."""
    manifest = Manifest.of([Entry("a.txt", "YQ==", size=1)], Algorithm.MD5)
    request = CommitRequest(
        entity="team",
        project="proj",
        name="data",
        type="dataset",
        manifest=manifest,
        aliases=["best"],
        tags=["t"],
        metadata={"k": [1, None]},
        description="d",
        ttl_seconds=60,
        run_id="run1",
        distributed_id="job",
        incremental=True,
    )
    defaults = CommitRequest(
        entity="", project="", name="", type="", manifest=Manifest.of([], Algorithm.XXH128)
    )
    unset = [
        f.name
        for f in dataclasses.fields(CommitRequest)
        if getattr(request, f.name) == getattr(defaults, f.name)
    ]
    assert unset == [], f"give these fields a value here: {unset}"
    return request


def test_every_field_of_the_request_has_a_counterpart_on_the_wire_and_back() -> None:
    request_fields = {f.name for f in dataclasses.fields(CommitRequest)}
    wire_fields = set(CommitIn.model_fields)
    assert request_fields - {"manifest"} == wire_fields - WIRE_ONLY
    assert wire_fields >= WIRE_ONLY


def test_a_request_goes_over_the_wire_unchanged() -> None:
    request = _every_field_set()
    body = CommitIn.of(request, manifest_blob="xxh128:" + "0" * 32, sources=["v1"])
    received = CommitIn.model_validate(body.model_dump(mode="json"))
    assert received.manifest_blob == "xxh128:" + "0" * 32
    assert received.algorithm == "MD5"
    assert received.sources == ["v1"]
    assert received.to_request(request.manifest) == request
