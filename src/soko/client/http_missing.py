"""The missing-blob question, asked of a server a batch of digests at a time.

Each batch (16,384 digests of a manifest's columns) is sent as its raw bytes and answered
one bit per digest (:mod:`soko.wire.missing_bits`): a million digests are never written
out as text, nor parsed back, on either side. A server that predates the binary question
(404) is asked in JSON, 10,000 digests a request, from then on.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from soko.client.http_session import ApiSession
from soko.client.pygc import collect_young
from soko.core.digests import (
    Algorithm,
    BatchedDigests,
    Digest,
    DigestBatch,
    digest_batches,
)
from soko.errors import NotFoundError
from soko.wire.base import format_digest, parse_digest
from soko.wire.missing_bits import MEDIA_TYPE, check_answer, missing_of
from soko.wire.requests import MAX_DIGESTS_PER_REQUEST, MissingOut

SourcesFor = Callable[[Iterable[Digest]], list[str]]


class MissingQuestions:
    """Asks a server which blobs a writer of a project must upload."""

    def __init__(self, session: ApiSession, sources_for: SourcesFor) -> None:
        self.session = session
        self._sources_for = sources_for
        self._binary = True

    def ask(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None
    ) -> set[Digest]:
        # Two questions at once: while the server answers one, this side sends the next.
        ask = functools.partial(self._ask_batch, entity=entity, project=project, name=name)
        missing: set[Digest] = set()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="soko-missing") as pool:
            for found in pool.map(ask, digest_batches(digests)):
                missing |= found
        return missing

    def missing_bits(
        self, algorithm: Algorithm, raws: bytes, *, entity: str, project: str, name: str | None
    ) -> bytes | None:
        """The server's answer, one bit per digest, about up to
        :data:`~soko.wire.missing_bits.MAX_RAW_DIGESTS` raw digests of *algorithm* back to
        back, for the project and collection *name*, naming no version the client read;
        None from a server that predates the binary question. No object per digest."""
        return self._bits(algorithm, raws, _owner(entity, project, name))

    def _ask_batch(
        self, batch: DigestBatch, *, entity: str, project: str, name: str | None
    ) -> set[Digest]:
        owner = _owner(entity, project, name)
        sources = self._sources_for(BatchedDigests(lambda: iter((batch,))))
        bits = self._bits(batch.algorithm, batch.raws, {**owner, "sources": sources})
        if bits is not None:
            return set(missing_of(batch, bits))
        missing: set[Digest] = set()
        pending = iter(batch)
        while part := list(itertools.islice(pending, MAX_DIGESTS_PER_REQUEST)):
            missing |= self._ask_json(part, owner, sources)
        return missing

    def _bits(self, algorithm: Algorithm, raws: bytes, params: dict[str, Any]) -> bytes | None:
        """``POST /blobs/missing/raw``: the answer's bits, or None (and the JSON question
        from then on) from a server that predates it."""
        if not self._binary:
            return None
        try:
            answer = self.session.call(
                "POST",
                "/blobs/missing/raw",
                params={**params, "algorithm": algorithm.key},
                content=raws,
                headers={"Content-Type": MEDIA_TYPE},
            )
        except NotFoundError:
            self._binary = False
            return None
        bits = answer.content
        del answer
        collect_young()  # the request holds the digests in a cycle (see pygc)
        check_answer(bits, len(raws) // algorithm.raw_size)
        return bits

    def _ask_json(
        self, part: list[Digest], owner: dict[str, Any], sources: list[str]
    ) -> set[Digest]:
        named = {format_digest(d): d for d in part}
        body = {**owner, "digests": sorted(named), "sources": sources}
        answer = MissingOut.model_validate(self.session.json("POST", "/blobs/missing", json=body))
        missing = {named.get(t) or parse_digest(t) for t in answer.missing}
        del named, body, answer
        # The question and its answer (about 40 bytes a digest each) are in a reference
        # cycle through the response: with the collector paused for the log, every slice's
        # would stay until the log ends (see pygc).
        collect_young()
        return missing


def _owner(entity: str, project: str, name: str | None) -> dict[str, Any]:
    owner: dict[str, Any] = {"entity": entity, "project": project}
    if name is not None:
        owner["name"] = name
    return owner
