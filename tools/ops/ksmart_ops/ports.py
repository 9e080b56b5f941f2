"""Whether a TCP port on this machine is taken, and by which process, so
that `make run` can name what stands in its way instead of starting half a
platform.

A port counts as taken when binding it fails the way the platform's own
processes bind (with SO_REUSEADDR, as eventlet.listen and wsgiref do), so a
connection lingering in TIME_WAIT does not count. The holder is found as
`ss -p` finds it: the listening socket's inode in /proc/net/tcp{,6}, then
the process with that socket among its open files. That is Linux's /proc,
and only processes of the same user (or any, for root) show their files;
elsewhere the port is named without its holder.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # the TCP state's code in /proc/net/tcp


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str


def listen_problem(host: str, port: int) -> str | None:
    """None when a process could listen on host:port now; else why not,
    naming the process that holds the port when it can be seen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return f"{host}:{port} cannot be listened on: {error.strerror}"
            found = holder(port)
            if found is None:
                return f"port {port} is in use by a process this user cannot see"
            return f"port {port} is in use by process {found.pid} ({found.command})"
    return None


def holder(port: int) -> Holder | None:
    """The process listening on `port`, if this user can see it."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not sockets:
        return None
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:  # another user's process, or one that just ended
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target in sockets:
                return Holder(int(entry.name), _command(entry))
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == LISTEN and fields[9] != "0":
                inodes.add(fields[9])
    return inodes


def _command(process: Path) -> str:
    try:
        words = (process / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return " ".join(word.decode(errors="replace") for word in words if word) or "?"
