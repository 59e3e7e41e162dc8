"""How numbers read in reports, cards and terminal lines, and sizes as people write them: one
formatter (and one parser) for each kind."""

from __future__ import annotations

import math
from typing import Any


def percent(v: Any, digits: int = 2, *, suffix: str = "", signed: bool = False) -> str:
    """A fraction as percent points: percent(0.8274) -> "82.74"; None or NaN -> "n/a" (a missing
    figure is never shown as 0). `suffix`: "%" where the unit is not in a column header."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * float(v):{'+' if signed else ''}.{digits}f}{suffix}"


def percent1(v: Any) -> str:
    """A fraction as a percentage with one decimal and its sign: percent1(0.8274) -> "82.7%" (prose and
    terminal lines; tables use `percent`)."""
    return percent(v, 1, suffix="%")


def parse_bytes(text: str | int | float) -> int:
    """'4G', '512M', '1.5GB', '800000' -> bytes (powers of 1024)."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if s and s[-1] in units:
            return int(float(s[:-1]) * units[s[-1]])
        return int(float(s))
    except ValueError:
        raise ValueError(f"not a size: {text!r} (write e.g. 4G, 512M or a number of bytes)") from None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
