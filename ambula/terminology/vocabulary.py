"""The distinct words of the loaded ICD-10-CM descriptions, with how many codes use each.

A few thousand words: each process keeps them in memory, so a search knows before asking the
database which words a prefix stands for and which of the query's words is the rarest, and
answers at once when a word matches nothing. It is rebuilt when another release is loaded.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass

from django.db.models import Count

from ambula.terminology.icd10 import CODE_SET
from ambula.terminology.models import CodeSetRelease, Icd10Word


@dataclass(frozen=True)
class Expansion:
    prefix: str
    words: list[str]
    codes: int  # rows of the word index they cover: roughly how many codes they match


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]  # sorted
    usage: list[int]  # index rows per word, in the same order

    def expand(self, prefix: str) -> Expansion:
        """The words that start with the prefix; a single character must be the whole word."""
        start = bisect_left(self.words, prefix)
        end = start
        if len(prefix) == 1:
            # The 2 of "type 2", the D of "vitamin D": as a prefix it would match nearly all.
            end += start < len(self.words) and self.words[start] == prefix
        else:
            while end < len(self.words) and self.words[end].startswith(prefix):
                end += 1
        return Expansion(prefix, self.words[start:end], sum(self.usage[start:end]))


_cache_lock = threading.Lock()
_cached: tuple[tuple, Vocabulary] | None = None


def _build() -> Vocabulary:
    rows = Icd10Word.objects.values_list("word").annotate(usage=Count("*")).order_by("word")
    words, usage = zip(*rows, strict=True) if rows else ((), ())
    return Vocabulary(list(words), list(usage))


def current_vocabulary() -> Vocabulary:
    """The vocabulary of the release in the table now (one small query checks which it is)."""
    global _cached
    release = (
        CodeSetRelease.objects.filter(code_set=CODE_SET)
        .values_list("release", "loaded_at", "code_count")
        .first()
    )
    if release is None:
        return _build()  # codes put there by other means than the loader: nothing to key on
    cached = _cached
    if cached is not None and cached[0] == release:
        return cached[1]
    with _cache_lock:
        if _cached is None or _cached[0] != release:
            _cached = (release, _build())
        return _cached[1]
