"""What every settings module shares: the error a bad setting raises, and the common checks."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range. The message says which."""


def positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
