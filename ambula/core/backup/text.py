"""Words for people: the progress report callback, counts ("2 files") and sizes ("3.2 KiB")."""

from __future__ import annotations

import math
from collections.abc import Callable

Report = Callable[[str], None]


def _quiet(message: str) -> None:
    """Report nothing (the default for callers that print their own summary)."""


def plural(count: int, noun: str) -> str:
    """Return "1 file", "2 files", "1,024 files"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def human_size(size: int) -> str:
    """Return a size for people: 512 bytes, 3.2 KiB, 41.0 MiB."""
    if size < 1024:
        return f"{size} bytes"
    exponent = min(int(math.log(size, 1024)), 4)
    return f"{size / 1024**exponent:.1f} {'KMGT'[exponent - 1]}iB"
