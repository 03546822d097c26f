"""The kinds of the values the package passes to the core: a ``TypeError``
naming the parameter for a value of the wrong kind (a ``bool`` is not a
number here), a ``ValueError`` for a whole number too large or negative to
be one. The ranges themselves are the core's: it checks every value that
gets this far, and its errors name the parameter too."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["U32_MAX", "count", "seconds", "optional_count", "optional_number", "number"]

#: The largest count the core takes (attempts, thresholds, tokens).
U32_MAX = 2**32 - 1


def count(parameter: str, value: Any, component: str, largest: int = U32_MAX) -> int:
    """``value`` as a whole number from 0 to ``largest``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{parameter} must be an int, not {type(value).__name__}")
    if not 0 <= value <= largest:
        raise ValueError(f"invalid {component}: {parameter} is {value}; allowed: a whole number from 0 to {largest}")
    return value


def number(parameter: str, value: Any, what: str = "a number") -> float:
    """``value`` (an int or a float, not a bool) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{parameter} must be {what}, not {type(value).__name__}")
    return float(value)


def seconds(parameter: str, value: Any) -> float:
    """``value``, a number of seconds, as a float."""
    return number(parameter, value, "a number of seconds")


def optional_count(parameter: str, value: Any, component: str) -> Optional[int]:
    return None if value is None else count(parameter, value, component)


def optional_number(parameter: str, value: Any) -> Optional[float]:
    return None if value is None else number(parameter, value)
