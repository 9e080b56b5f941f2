"""The portal's HTTP cache: the gateway's answers that anyone may keep.

The catalogue (a service's definition, the categories, a search) and the
local-body directory change only when a new version ships, so the gateway
sends them with `Cache-Control: public, max-age=...` and an ETag
(gateway/ksmart_gateway/caching.py). Every page used to fetch them again;
now each portal process keeps them, in a bounded LRU shared by its threads:
served as they are while fresh, and once stale asked for again with
If-None-Match, so an unchanged answer costs the gateway a 304 and no body.

Kept: only an anonymous GET's 200 that the gateway marked public with a
lifetime (ksmart_portal.gateway decides which calls may look here). Never
an answer to a call with a token, nor one marked private, no-store or
no-cache: a person's files, notifications and certificates stay between
them and the gateway. The key holds the Accept-Language sent, since the
gateway may word an answer (or a problem) in the caller's language.

Answers are kept as the bytes received and parsed on each use, so a page
that changes what it was handed cannot change it for the next page."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Enough for every service's definition in both languages with room for
# searches; a definition is a few kilobytes, so at most a few MB a process.
DEFAULT_MAX_ENTRIES = 1024
# What a shared cache must not keep, or must not serve without asking.
REFUSING = frozenset({"private", "no-store", "no-cache"})

CacheKey = tuple[str, str]  # (the URL with its query, the Accept-Language sent)


def shared_lifetime(cache_control: str | None) -> float | None:
    """Seconds a shared cache may serve the answer without asking again:
    its s-maxage, else its max-age, when it is marked public; None when it
    must not be kept (not public, private, no-store, no-cache, no lifetime)."""
    directives: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"') or None
    if "public" not in directives or REFUSING & directives.keys():
        return None
    age = directives.get("s-maxage", directives.get("max-age"))
    if age is None or not age.isdigit() or int(age) == 0:
        return None
    return float(age)


@dataclass(frozen=True)
class Kept:
    """One answer as it came: its body's bytes, its ETag, and until when
    (on the cache's clock) it may be served without asking."""

    content: bytes
    etag: str | None
    lifetime: float
    fresh_until: float


class HttpCache:
    """A bounded LRU of answers, safe to share between threads. The clock
    is injectable so tests age answers without sleeping."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[CacheKey, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: CacheKey) -> Kept | None:
        """The kept answer, fresh or stale (see is_fresh); now the most
        recently used."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._entries.move_to_end(key)
            return kept

    def is_fresh(self, kept: Kept) -> bool:
        return self.clock() < kept.fresh_until

    def put(self, key: CacheKey, content: bytes, etag: str | None, lifetime: float) -> Kept:
        """Keep an answer (new, or confirmed by a 304) for `lifetime` seconds
        from now; the least recently used goes when the cache is full."""
        kept = Kept(content, etag, lifetime, self.clock() + lifetime)
        with self._lock:
            self._entries[key] = kept
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return kept

    def discard(self, key: CacheKey) -> None:
        with self._lock:
            self._entries.pop(key, None)
