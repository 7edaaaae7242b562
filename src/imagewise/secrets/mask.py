"""Masking: the one function that shows a secret, and text with every detected secret masked.

``mask(value)`` is how every output shows a secret: the well-known prefix of a token format
(``ghp_``, ``AKIA``, ``glpat-``...) when the whole value has that format, then a fixed run of
stars, so neither the rest of a token nor any character or the length of a password is shown.
The same value is masked the same way whichever detector, command or format shows it.

``redact(text)`` masks every value a secret detector matches in a text meant for output (a
layer's ``created_by``, an ``ENV`` line, a label, a file path). A cheap pre-check on words every
detector needs keeps clean text (nearly all of it) from loading the detectors at all.
"""

from __future__ import annotations

import re

STARS = "*" * 8

#: token formats whose prefix names the kind of secret, not the secret: (prefix)(rest)
_FORMATS = (
    r"(A[KSBC][IC]A)[A-Z2-7]{16}"
    r"|(gh[pousr]_)[A-Za-z0-9]{36}|(github_pat_)[A-Za-z0-9_]{82}"
    r"|(glpat-)[A-Za-z0-9_-]{20}"
    r"|(xox[abposr]-)[0-9A-Za-z-]{10,}"
    r"|([rs]k_(?:live|test)_)[0-9a-zA-Z]{24,99}"
    r"|(npm_)[A-Za-z0-9]{36}"
    r"|(pypi-)AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"
    r"|(eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"
)

#: a text with none of these (lower-cased) has nothing a detector matches outside configuration
#: files: every such rule starts with one of these literals or needs one of these keywords
#: (compiled on first use: a lint run uses neither)
_TRIGGER = (
    r"a[ksbc][ic]a|gh[pousr]_|github_pat_|glpat-|xox|hooks\.slack|npm_|_authtoken|pypi-|eyj|"
    r"-----begin|\"private_key\"|://[^\s/@:]+:[^\s/@]+@|aws|k_live_|k_test_"
)
#: ... and a ``NAME=value`` secret needs a name holding one of these words
_TRIGGER_NAMED = _TRIGGER + r"|(?:pass|pwd|secret|key|token|credential)[a-z0-9_]*="
_TRIGGERS: list[re.Pattern[str]] = []  # [_TRIGGER, _TRIGGER_NAMED] compiled


def mask(value: str) -> str:
    """``value`` as every output shows it: a known token prefix at most, then ``********``."""
    m = re.fullmatch(_FORMATS, value.strip())  # compiled on first use (most runs mask nothing)
    prefix = next((g for g in m.groups() if g), "") if m else ""
    return prefix + STARS


def may_hold_secret(text: str, assignments: bool = True) -> bool:
    """False when no detector can match in ``text`` (the quick pre-check of ``redact``)."""
    if not _TRIGGERS:
        _TRIGGERS[:] = [re.compile(_TRIGGER), re.compile(_TRIGGER_NAMED)]
    return _TRIGGERS[1 if assignments else 0].search(text.lower()) is not None


def redact(text: str, *, assignments: bool = True) -> str:
    """``text`` with every value a secret detector matches replaced by ``mask(value)``.

    ``assignments``: also mask ``NAME=value`` where the name says secret and the value looks like
    one (as ``scan`` reports them in ``ENV`` lines, labels and build arguments in history)."""
    if not text or not may_hold_secret(text, assignments):
        return text
    from imagewise.secrets.detect import secret_spans

    spans = secret_spans(text, assignments=assignments)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(mask(text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact_path(path: str) -> str:
    """A file path with any detected secret in it masked."""
    return redact(path, assignments=False)


def redact_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels with their secrets masked: each is read as ``key=value``, as ``scan`` reads it."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        k, _, v = redact(f"{key}={value}").partition("=")
        out[k] = v
    return out
