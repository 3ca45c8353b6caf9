"""Atomic file writes: a reader sees the old file or the whole new one, never a torn one.

Standard library only, so any layer (the IO manager, the source registry, B-roll's job files, the
response cache) can use it without importing Dagster. Written by hand because the library that did this
(``atomicwrites``) is archived by its author; the recipe is short: a temporary file in the target's own
directory (so the rename never crosses a filesystem), fsync, ``os.replace``, then fsync the directory so
the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not safe to repeat while
# other threads create files.
_UMASK = _current_umask()


@contextmanager
def atomic_writer(path: Path, *, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``path`` only when the block ends without an exception.

    An exception (a size limit hit while streaming, a kill) removes the temporary file and leaves
    ``path`` as it was. The temporary file is a dotfile next to ``path`` ending in ``suffix``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; artifacts are shared with workers running as other users.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    with atomic_writer(path) as handle:
        handle.write(data)
