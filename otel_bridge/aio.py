"""Small asyncio helpers shared by the background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; ``True`` if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that
    arrives just as the awaited event completes, and a loop around it then
    never ends (the task cannot be stopped). ``asyncio.timeout`` has no such race.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended; its cancellation is not raised here."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
