"""Reading a recorded JSON Lines file for a replay: plain or gzip, a file or stdin.

What a recording looks like in practice is not always what the simulator writes:
files get gzipped for storage (``events.jsonl.gz``), editors on Windows put a
UTF-8 byte-order mark in front of the first line, and a broken producer can
write one enormous line. None of these may end a replay in a traceback or hold
the whole file in memory:

* gzip input (recognised by its magic bytes, whatever the file is called) is
  decompressed on the fly; a damaged gzip file is a :class:`ConfigError`;
* a UTF-8 BOM at the very start is dropped (it is not part of the first record);
* line endings (``\n`` or ``\r\n``) are not part of the record, so a record of
  exactly ``MAX_RECORD_BYTES`` is accepted as the worker accepts it from Kafka;
* a line longer than the codec's record limit is read in pieces and handed on
  cut to ``MAX_RECORD_BYTES + 1`` bytes, so the codec rejects it as
  ``record_too_large`` while memory stays bounded.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from streams.codec import MAX_RECORD_BYTES
from streams.errors import ConfigError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16


class _Lines(Protocol):
    """What is read from: a binary file, stdin's buffer or a gzip stream."""

    def readline(self, size: int = -1, /) -> bytes: ...


def read_lines(path: str, *, what: str = "events", hint: str | None = None) -> Iterator[bytes]:
    """The lines of ``path`` (``-`` = stdin) without their line ending, each at most
    ``MAX_RECORD_BYTES + 1`` bytes.

    ``what`` names the file in error messages; ``hint`` is what to do when it cannot be read.
    """
    if path == "-":
        yield from _lines_of(sys.stdin.buffer, "stdin", what)
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{what} file {path} is a directory: give a JSON Lines file")
    try:
        handle = target.open("rb")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} file {path} ({exc.strerror})" + (f": {hint}" if hint else "")
        ) from exc
    with handle:
        yield from _lines_of(handle, path, what)


def _lines_of(raw: IO[bytes], name: str, what: str) -> Iterator[bytes]:
    head = _peek(raw, len(GZIP_MAGIC))
    if head.startswith(GZIP_MAGIC):
        stream: _Lines = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        stream = raw
    first = True
    try:
        for line in _bounded_lines(stream):
            if first:
                first = False
                if line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM) :]
            yield line
    except (OSError, EOFError, zlib.error) as exc:
        if stream is raw:
            raise ConfigError(f"cannot read {what} file {name} ({exc})") from exc
        # gzip.BadGzipFile is an OSError; a cut-off gzip stream is an EOFError.
        raise ConfigError(
            f"{what} file {name} is not a readable gzip file ({exc}): "
            "check the download or decompress it with `gunzip -t`"
        ) from exc


def _peek(raw: IO[bytes], size: int) -> bytes:
    peek = getattr(raw, "peek", None)
    if peek is not None:
        return bytes(peek(size)[:size])
    if raw.seekable():
        position = raw.tell()
        data = raw.read(size)
        raw.seek(position)
        return data
    return b""


def _bounded_lines(stream: _Lines) -> Iterator[bytes]:
    """Lines without their ending; an over-long line is cut and the rest of it skipped."""
    limit = MAX_RECORD_BYTES + 2  # the largest record and a CRLF
    while True:
        line = stream.readline(limit)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-2] if line.endswith(b"\r\n") else line[:-1]
            continue
        if len(line) == limit:
            # Too long for any valid record: skip to the end of the line without holding it.
            while True:
                rest = stream.readline(_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            line = line[: MAX_RECORD_BYTES + 1]
        yield line
