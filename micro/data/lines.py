"""A source file's lines, read safely: the first few, and a bounded scan for absurd lines."""

from __future__ import annotations

from pathlib import Path

from micro.errors import DataError

MAX_LINE_BYTES = 4096
"""The longest line a candle file may have; a longer one is not a candle row (no line breaks?)."""
_CHUNK_BYTES = 1 << 20


def head_lines(path: Path, count: int = 5) -> list[str]:
    """The first `count` non-blank lines of `path` (BOM and line ends stripped)."""
    lines: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) >= count:
                    break
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})") from None
    return lines


def check_line_lengths(path: Path, limit: int = MAX_LINE_BYTES) -> None:
    """Refuse a text file with a line longer than `limit` bytes, reading 1 MiB at a time.

    JSON (OANDA's response, often one line) is exempt: its first byte is `{` or `[`.
    """
    line, length = 1, 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK_BYTES):
                if line == 1 and length == 0 and chunk.lstrip()[:1] in (b"{", b"["):
                    return
                pieces = chunk.split(b"\n")
                if length + len(pieces[0]) <= limit and max(map(len, pieces)) <= limit:
                    line, length = (
                        line + len(pieces) - 1,
                        len(pieces[-1]) + (length if len(pieces) == 1 else 0),
                    )
                    continue
                for i, piece in enumerate(pieces):
                    length += len(piece)
                    if length > limit:
                        raise DataError(
                            f"{path}, line {line}: longer than {limit} bytes (no line break?); "
                            "a candle file has one bar per line: check that it is a text export "
                            "with line breaks (nothing was imported)"
                        )
                    if i < len(pieces) - 1:
                        line, length = line + 1, 0
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})") from None
