"""``atomic_writer``: the target holds the old bytes or all of the new ones, and no temporary file stays."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from resources.atomic_files import atomic_write_bytes, atomic_writer


class StreamCut(Exception):
    """Stands for whatever stops a stream half way (a size limit, a kill)."""


def test_atomic_write_bytes_creates_the_folder_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_a_stream_cut_half_way_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "source.pdf"
    target.write_bytes(b"old version")
    with pytest.raises(StreamCut), atomic_writer(target, suffix=".part") as handle:
        handle.write(b"half of the new ")
        raise StreamCut
    assert target.read_bytes() == b"old version"
    assert [p.name for p in tmp_path.iterdir()] == ["source.pdf"]


def test_the_written_file_gets_the_umask_permissions_not_mkstemps_private_ones(tmp_path: Path) -> None:
    """Workers running as other users read the artifacts; mkstemp alone would leave them 0600."""
    target = tmp_path / "artifact.txt"
    atomic_write_bytes(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
