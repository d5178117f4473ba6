"""The live processes of this machine, read from /proc (for the leak checks of the tests)."""

from __future__ import annotations

import os

__all__ = ["command_line", "live_processes"]


def live_processes() -> dict[int, int]:
    """``{pid: parent pid}`` of every live process (zombies excluded)."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we read
        if fields[0] != "Z":
            out[int(entry)] = int(fields[1])
    return out


def command_line(pid: int) -> bytes | None:
    """The raw command line of ``pid`` (NUL-separated), None when it has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None
