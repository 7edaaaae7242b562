"""Corpus helpers for the autofix tests: the corpus Dockerfiles and copies with fixable
problems put back in."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import corpus

_DEGRADE = [
    (re.compile(r" --no-cache(?=\s)"), ""),
    (re.compile(r" --no-install-recommends(?=\s)"), ""),
    (re.compile(r" --no-cache-dir(?=\s)"), ""),
    (re.compile(r"^COPY (?!--from)", re.M), "ADD "),
    (re.compile(r'^CMD \[ ?"(\w+)" ?\]$', re.M), r"CMD \1"),
]


def corpus_dockerfiles() -> list[Path]:
    """The Dockerfiles of the corpus (../shared/corpora/dockerfiles)."""
    folder = corpus("dockerfiles")
    return sorted(p for p in folder.iterdir() if p.is_file() and "Dockerfile" in p.name)


def variants(text: str) -> list[str]:
    """The file itself and a copy with fixable problems put back in (the corpus is clean)."""
    worse = text
    for pattern, repl in _DEGRADE:
        worse = pattern.sub(repl, worse)
    return [text, worse]
