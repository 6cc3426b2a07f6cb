"""Bounded decompression of HTTP bodies (gzip, deflate, br), fed raw network chunks.

httpx's own decoders inflate whole chunks; here every decompressor call emits at most ``STEP`` bytes,
so a small "bomb" body can never allocate much more than the caller's cap before it is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

MAX_ENCODINGS = 2  # "gzip, br" is plausible; deeper nesting is only ever an attack
_GZIP_MAGIC = b"\x1f\x8b"
_STEP = 64 * 1024  # most bytes any decompressor may emit per call: bounds memory per step


class DecodeError(Exception):
    pass


class TooBig(Exception):
    pass


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Zlib:
    """gzip (several members allowed) or deflate (zlib-wrapped, falling back to raw as browsers do)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(31 if gzip else 15)
        self._head = b""  # deflate input kept until the 2-byte zlib header has been checked
        self._checked = gzip
        self._carry = b""  # a split gzip magic number between two members
        self._done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending, self._carry = self._carry + data, b""
        while not self._done and (pending or not self._obj.eof):
            if self._obj.eof:
                if self._gzip and len(pending) < 2 and _GZIP_MAGIC.startswith(pending):
                    self._carry = pending
                    return
                if not (self._gzip and pending.startswith(_GZIP_MAGIC)):
                    self._done = True  # bytes after the end of the stream are ignored, as browsers do
                    return
                self._obj = zlib.decompressobj(31)
            out = self._step(pending)
            if out:
                yield out
            # A bounded call leaves input in unconsumed_tail; the next gzip member lands in unused_data.
            pending = self._obj.unconsumed_tail or (self._obj.unused_data if self._obj.eof else b"")
            if not pending and len(out) < _STEP:
                return

    def _step(self, data: bytes) -> bytes:
        try:
            out = self._obj.decompress(data, _STEP)
        except zlib.error as exc:
            if self._checked:
                raise DecodeError(str(exc)) from exc
            self._obj = zlib.decompressobj(-15)  # "deflate" sent as a raw stream
            self._checked = True
            data, self._head = self._head + data, b""
            try:
                return self._obj.decompress(data, _STEP)
            except zlib.error as exc2:
                raise DecodeError(str(exc2)) from exc2
        if not self._checked:
            self._head += data
            self._checked = len(self._head) >= 2
            if self._checked:
                self._head = b""
        return out

    def flush(self) -> Iterator[bytes]:
        # Not zlib's flush(): it would return all pending output at once, unbounded.
        yield from self.feed(b"")


class _Brotli:
    # brotli is imported by the first "br" response, not by every daemon: most feeds come plain or gzipped.
    def __init__(self) -> None:
        import brotli

        self._dec = brotli.Decompressor()
        self._error = brotli.error

    def feed(self, data: bytes) -> Iterator[bytes]:
        dec = self._dec
        if dec.is_finished():
            return
        try:
            out: bytes = dec.process(data, output_buffer_limit=_STEP)
            stalls = 0
            while True:
                if out:
                    yield out
                    stalls = 0
                elif dec.can_accept_more_data() or dec.is_finished():
                    return
                else:
                    stalls += 1
                    if stalls > 3:
                        raise DecodeError("brotli decoder made no progress")
                # The decoder may still hold output for input it already took: drain with empty input.
                out = dec.process(b"", output_buffer_limit=_STEP)
        except self._error as exc:
            raise DecodeError(str(exc) or "invalid brotli data") from exc

    def flush(self) -> Iterator[bytes]:
        yield from self.feed(b"")


class Chain:
    """Decoders in the order they must run (reverse of the Content-Encoding list)."""

    def __init__(self, decoders: list[_Decoder]) -> None:
        self._decoders = decoders

    def feed(self, data: bytes, start: int = 0) -> Iterator[bytes]:
        if start == len(self._decoders):
            yield data
            return
        for piece in self._decoders[start].feed(data):
            yield from self.feed(piece, start + 1)

    def flush(self) -> Iterator[bytes]:
        for i, decoder in enumerate(self._decoders):
            for piece in decoder.flush():
                yield from self.feed(piece, i + 1)


def body_decoder(content_encoding: str) -> Chain:
    """Decoders for a Content-Encoding header; raises DecodeError for unsupported or nested-too-deep ones."""
    names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
    names = [n for n in names if n != "identity"]
    if len(names) > MAX_ENCODINGS:
        raise DecodeError(f"too many nested Content-Encodings: {content_encoding}")
    decoders: list[_Decoder] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip"):
            decoders.append(_Zlib(gzip=True))
        elif name == "deflate":
            decoders.append(_Zlib(gzip=False))
        elif name == "br":
            decoders.append(_Brotli())
        else:
            raise DecodeError(f"unsupported Content-Encoding {name!r}")
    return Chain(decoders or [_Identity()])
