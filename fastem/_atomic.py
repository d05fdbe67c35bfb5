"""Files replaced whole or not at all.

A model file or a result written in place is lost, old and new, if the
process dies or the disk fills up halfway. ``atomic_write(path)`` writes
to a temporary file beside ``path``, flushes it to the disk, and only then
renames it over ``path`` (a rename within a directory is atomic on POSIX
and Windows); on any error, Ctrl-C included, the temporary file is
removed and ``path`` is left as it was.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


def _umask():
    # os.umask can only be read by setting it: set it back at once
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike):
    """A binary file object whose contents replace ``path`` when the block
    ends without an exception."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as exc:  # name the file asked for, not the temporary one
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private; give it the mode a new file gets
        # (or the one the replaced file had)
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def _sync_directory(directory):
    # the rename itself reaches the disk when the directory does; not
    # possible on every platform (Windows), where it is skipped
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
