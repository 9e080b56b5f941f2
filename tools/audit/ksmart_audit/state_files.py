"""Small JSON state files that must survive a crash whole: the witness's
record of what it cosigned and the auditor's record of the checkpoint it saw
last. A reader finds the old content or the new, never half of either:
the new text goes to a temporary file beside the old, is fsynced, renamed
over it (atomic on POSIX) and the folder is fsynced so the rename itself is
durable. A witness must not answer before its new state is on disk
(C2SP tlog-witness), and this is what makes "on disk" true."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class StateFileError(Exception):
    """A state file that cannot be read, written or locked."""


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(f"cannot read {path}: {error}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise StateFileError(f"{path} is not JSON: {error}") from error


def write_json_atomically(path: Path, document: Any) -> None:
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as error:
        raise StateFileError(f"cannot write {path}: {error}") from error


class ExclusiveLock:
    """One process at a time on a state file (a lock file beside it): two
    witnesses sharing one state would each check against a record the
    other is about to replace."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self._handle: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(handle)
            raise StateFileError(f"another process holds {self.path}") from error
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
