"""The /metrics body, rendered once per poll and served as bytes.

Rendering tens of thousands of series costs prometheus_client several microseconds each, so
it happens when a poll publishes a new snapshot, not when Prometheus scrapes, and only in the
formats scrapers have been asking for (the first scrape in a new format renders it). Each is
kept as plain bytes and as the start of a gzip stream; a scrape only renders the handful of
live process metrics and appends them, compressing just those bytes on a copy of the
compressor the static part left behind, so every gzip answer is one ordinary gzip member.
Time-dependent values (ages, overdue) are therefore as of the last rendering: a poll, or
the periodic refresh that keeps them moving while polls are slow or paused.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
import zlib
from collections.abc import Callable, Collection
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.durations import HOUR

OPENMETRICS_EOF = b"# EOF\n"
GZIP_LEVEL = 6
# A format (text, OpenMetrics, ...) is rendered at every refresh while scrapers asked for it
# within this long; otherwise only when one asks, and kept until the next refresh.
FORMAT_IN_USE_SECONDS = 1.0 * HOUR

Encoder = Callable[[CollectorRegistry], bytes]  # prometheus_client's encoders take any .collect()


class _Body(NamedTuple):
    """One format's rendering of the snapshot; `plain` lacks OpenMetrics' closing # EOF."""

    content_type: str
    encoder: Encoder
    plain: bytes
    gzip_head: bytes
    gzip_state: zlib._Compress  # the compressor right after gzip_head, to copy per scrape
    families: tuple[Family, ...]  # where each family stands in `plain`, for name[] filters


class Family(NamedTuple):
    """A family's stretch of a rendering, and the names a `name[]` filter may ask it by."""

    names: frozenset[str]
    start: int
    end: int


_SUFFIXES = (b"_total", b"_info", b"_created")


def families_of(text: bytes) -> tuple[Family, ...]:
    """The families of a rendering, each from its `# HELP` line to the next one's."""
    starts = [match.start() for match in re.finditer(rb"(?m)^# HELP ", text)]
    families = []
    ends = [
        *starts[1:],
        len(text) - (len(OPENMETRICS_EOF) if text.endswith(OPENMETRICS_EOF) else 0),
    ]
    for start, end in zip(starts, ends, strict=True):
        block = text[start:end]
        names = set()
        for line in block.splitlines():
            if line.startswith(b"# HELP "):
                name = line.split(b" ", 3)[2]
                names.update({name, *(name.removesuffix(s) for s in _SUFFIXES)})
            elif line and not line.startswith(b"#"):
                names.add(re.split(rb"[{ ]", line, maxsplit=1)[0])
        families.append(Family(frozenset(n.decode() for n in names), start, end))
    return tuple(families)


class Response(NamedTuple):
    headers: list[tuple[str, str]]
    chunks: list[bytes]


def _openmetrics(content_type: str) -> bool:
    return content_type.startswith("application/openmetrics-text")


def choose_format(accept: str) -> tuple[Encoder, str]:
    """prometheus_client's choice, with any OpenMetrics version a client names held to 1.0.0:
    each distinct content type is rendered and kept, so a client naming versions 1.1.0,
    1.2.0, ... must not add one each. Escapings and text versions are a small fixed set."""
    encoder, content_type = choose_encoder(accept)
    if _openmetrics(content_type) and "version=1.0.0" not in content_type:
        _, found, escaping = content_type.partition("escaping=")
        canonical = "application/openmetrics-text;version=1.0.0"
        return choose_encoder(f"{canonical};escaping={escaping}" if found else canonical)
    return encoder, content_type


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether Accept-Encoding allows gzip: listed (or `*`) with a quality above 0."""
    allowed: dict[str, bool] = {}
    for part in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding:
            allowed[coding.lower()] = quality > 0
    return allowed.get("gzip", allowed.get("*", False))


def _render(registry: CollectorRegistry, encoder: Encoder, content_type: str) -> _Body:
    plain = encoder(registry)
    if _openmetrics(content_type) and plain.endswith(OPENMETRICS_EOF):
        plain = plain[: -len(OPENMETRICS_EOF)]  # the live tail ends the body
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    head = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return _Body(content_type, encoder, plain, head, compressor, families_of(plain))


class Exposition:
    """Holds the current rendering of `snapshot_registry`; `live_registry` is rendered per
    scrape (it must stay small: the process metrics)."""

    def __init__(
        self,
        snapshot_registry: CollectorRegistry,
        live_registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._snapshot_registry = snapshot_registry
        self._live_registry = live_registry
        self._clock = clock
        self._bodies: dict[str, _Body] = {}
        self._asked: dict[str, tuple[Encoder, float]] = {}  # content type: (encoder, last asked)
        self._lock = threading.Lock()
        self.rendered_at: float | None = None

    def refresh(self) -> None:
        """Render the snapshot again (after a poll, or when the last rendering got old), in
        every format scrapers use; nothing at all while nobody scrapes."""
        now = self._clock()
        with self._lock:
            self._asked = {
                content_type: asked
                for content_type, asked in self._asked.items()
                if now - asked[1] <= FORMAT_IN_USE_SECONDS
            }
            in_use = dict(self._asked)
        bodies = {
            content_type: _render(self._snapshot_registry, encoder, content_type)
            for content_type, (encoder, _) in in_use.items()
        }
        with self._lock:
            self._bodies = bodies
            self.rendered_at = now

    def respond(
        self,
        accept: str | None,
        accept_encoding: str | None,
        names: Collection[str] = (),
    ) -> Response:
        """The body for a scrape; `names` (from `name[]`) asks for just those families."""
        if names:
            return self._filtered(accept or "", accept_encoding or "", set(names))
        body = self._body(accept or "")
        tail = body.encoder(self._live_registry)
        headers = [("Content-Type", body.content_type)]
        if gzip_accepted(accept_encoding or ""):
            compressor = body.gzip_state.copy()
            chunks = [body.gzip_head, compressor.compress(tail) + compressor.flush()]
            headers.append(("Content-Encoding", "gzip"))
        else:
            chunks = [body.plain, tail]
        headers.append(("Content-Length", str(sum(map(len, chunks)))))
        return Response(headers, chunks)

    def _filtered(self, accept: str, accept_encoding: str, names: set[str]) -> Response:
        """The families asked for, cut from the current rendering: nothing is rendered again
        however many filtered scrapes come."""
        body = self._body(accept)
        tail = body.encoder(self._live_registry)
        picked = [
            text[family.start : family.end]
            for text, families in ((body.plain, body.families), (tail, families_of(tail)))
            for family in families
            if family.names & names
        ]
        if _openmetrics(body.content_type):
            picked.append(OPENMETRICS_EOF)
        output = b"".join(picked)
        content_type = body.content_type
        headers = [("Content-Type", content_type)]
        if gzip_accepted(accept_encoding):
            output = gzip.compress(output)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(output))))
        return Response(headers, [output])

    def formats_in_use(self) -> list[str]:
        """The content types rendered at each refresh."""
        with self._lock:
            return sorted(self._bodies)

    def text(self) -> bytes:
        """The whole body in the classic text format, as a plain scrape gets it."""
        return b"".join(self.respond("", None).chunks)

    def _body(self, accept: str) -> _Body:
        encoder, content_type = choose_format(accept)
        with self._lock:
            self._asked[content_type] = (encoder, self._clock())
            body = self._bodies.get(content_type)
            if body is None:  # the first scrape in this format since the last refresh
                body = _render(self._snapshot_registry, encoder, content_type)
                self._bodies = {**self._bodies, content_type: body}
            return body
