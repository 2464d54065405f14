"""``artifact.files()``: W&B's paginated listing of a logged version's files.

:class:`ArtifactFiles` asks the backend for one page of entries at a time (``per_page``,
in path order) as it is iterated or indexed, so the first files of a version of a million
are listed without reading its manifest; ``len()`` is the version's file count, known from
the first page. Named files (``names=``) are asked for one each. A version whose manifest
this process holds already (it logged it, or read ``artifact.manifest``) is listed from
that manifest, without asking again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

from soko.core.manifest import Entry
from soko.core.manifest_index import EntriesPage
from soko.sdk.entry import ArtifactFiles as Owner
from soko.sdk.entry import ManifestEntry

PageOf = Callable[[str, str | None, int], EntriesPage]
"""(prefix, after, limit) -> the page of entries: a backend's ``manifest_page``."""


class ArtifactFiles(Sequence[ManifestEntry]):
    """The files of a logged artifact, fetched a page at a time (see the module)."""

    def __init__(
        self,
        owner: Owner,
        *,
        page_of: PageOf | None = None,
        entries: Sequence[Entry] | None = None,
        names: Sequence[str] | None = None,
        per_page: int = 50,
    ) -> None:
        self._owner = owner
        self._page_of = page_of
        self._per_page = max(1, int(per_page))
        self._loaded: list[ManifestEntry] = []
        self._after: str | None = None
        self._done = False
        self._total: int | None = None
        self._names = list(dict.fromkeys(names)) if names is not None else None
        if entries is not None:
            wanted = set(self._names) if self._names is not None else None
            self._loaded = [
                ManifestEntry.of(e, artifact=owner)
                for e in entries
                if wanted is None or e.path in wanted
            ]
            self._done = True
            self._total = len(self._loaded)

    @property
    def more(self) -> bool:
        """Whether pages are left to fetch (W&B's paginator attribute)."""
        return not self._done

    def _fetch(self) -> bool:
        """Fetch the next page; False when there is none."""
        if self._done:
            return False
        assert self._page_of is not None
        if self._names is not None:
            self._fetch_named(self._names)
            return True
        page = self._page_of("", self._after, self._per_page)
        self._loaded.extend(ManifestEntry.of(e, artifact=self._owner) for e in page.entries)
        self._total = page.total
        self._after = page.next_after
        self._done = page.next_after is None
        return True

    def _fetch_named(self, names: list[str]) -> None:
        assert self._page_of is not None
        for name in names:
            # A path sorts before every longer path it starts: the first entry of the
            # page under the name as a prefix is that path, when the version has it.
            page = self._page_of(name, None, 1)
            if page.entries and page.entries[0].path == name:
                self._loaded.append(ManifestEntry.of(page.entries[0], artifact=self._owner))
        self._loaded.sort(key=lambda e: e.path)
        self._done = True
        self._total = len(self._loaded)

    def __iter__(self) -> Iterator[ManifestEntry]:
        at = 0
        while True:
            while at < len(self._loaded):
                yield self._loaded[at]
                at += 1
            if not self._fetch():
                return

    def __len__(self) -> int:
        if self._total is None:
            self._fetch()
        return self._total or 0

    @overload
    def __getitem__(self, index: int) -> ManifestEntry: ...
    @overload
    def __getitem__(self, index: slice) -> list[ManifestEntry]: ...
    def __getitem__(self, index: int | slice) -> ManifestEntry | list[ManifestEntry]:
        if isinstance(index, slice) or index < 0:
            while self._fetch():
                pass
            return self._loaded[index]
        while index >= len(self._loaded) and self._fetch():
            pass
        return self._loaded[index]

    def __repr__(self) -> str:
        return f"<ArtifactFiles {len(self)} files>"
