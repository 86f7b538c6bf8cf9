"""The JSON error body every HTTP route answers with: a stable code for programs, a message for people."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


def problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body: ``{"error": <stable code>, "message": <for people>}``."""
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)
