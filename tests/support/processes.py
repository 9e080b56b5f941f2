"""Finding the processes a test started, whoever their parent is by now:
each inherits an environment variable the test set to a value of its own.
Linux (/proc); only this user's processes show their environment."""

from __future__ import annotations

from pathlib import Path


def processes_with(name: str, value: str) -> dict[int, str]:
    """pid -> command line of every process whose environment has name=value."""
    wanted = f"{name}={value}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(entry.name)] = command.decode(errors="replace").strip()
        except OSError:  # ended meanwhile, or another user's
            continue
    return found
