"""I/O faults as one line a person can act on: what failed, on which path, and what to do."""

from __future__ import annotations

import errno
import sqlite3

from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

_WHAT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EIO: "input/output error",
}
_HINT = {
    errno.ENOSPC: "free some space or point --lake elsewhere; nothing partial was committed",
    errno.EDQUOT: "free some space or point --lake elsewhere; nothing partial was committed",
    errno.EFBIG: "nothing partial was committed",
    errno.EROFS: "use a writable --lake",
    errno.EACCES: "check the folder's permissions or use another --lake",
    errno.EPERM: "check the folder's permissions or use another --lake",
}


# what MLflow's stores raise when their database or server fails
REGISTRY_ERRORS = (sqlite3.Error, MlflowException, SQLAlchemyError)


def registry_problem(exc: BaseException) -> str:
    """The first line of a registry error: the driver's own message, not SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the sqlite3 error
    text = str(getattr(cause, "message", cause)).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def describe(exc: BaseException) -> str:
    """One line for an OSError, a decoding error or a registry error that reached the CLI."""
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"cannot decode text as {exc.encoding}: byte 0x{exc.object[exc.start]:02x} "
            f"at position {exc.start} ({exc.reason})"
        )
    if isinstance(exc, REGISTRY_ERRORS):  # e.g. "database or disk is full"
        return f"the model registry failed: {registry_problem(exc)}"
    if isinstance(exc, OSError):
        what = _WHAT.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        hint = _HINT.get(exc.errno or 0)
        return f"{what}{': ' + where if where else ''}{' (' + hint + ')' if hint else ''}"
    return f"{type(exc).__name__}: {exc}"
