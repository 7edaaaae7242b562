"""Human sizes: parse ``20MB``/``1.5GiB``/``512`` and format bytes the way people read them."""

from __future__ import annotations

import re

from imagewise.errors import UsageError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | float) -> int:
    """Bytes from ``20MB`` (decimal, as dive and docker print), ``20MiB`` (binary) or a plain number."""
    if isinstance(text, bool):
        raise UsageError(f"not a size: {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise UsageError(f"size must not be negative: {text}")
        return int(text)
    m = _RE.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise UsageError(f"not a size: {text!r} (try 20MB, 1.5GiB or 512)")
    return int(float(m.group(1)) * _UNITS[unit])


def format_size(n: float) -> str:
    """``18.2 MB`` style (decimal units, like docker and dive)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
