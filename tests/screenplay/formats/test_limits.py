"""Limits on untrusted files: every container limit trips before a parser inflates anything, real
screenplays pass them all, and the reader's child process is bounded in memory and time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cineforge_assets.screenplay.formats.errors import CorruptSourceError, NotARegularFileError, SourceLimitError
from cineforge_assets.screenplay.formats.isolated import read_source_isolated
from cineforge_assets.screenplay.formats.limits import MIB, SourceLimits
from cineforge_assets.screenplay.formats.reader import read_bounded, read_source, screen_source
from tests.conftest import REPO_ROOT
from tests.hostile import docx_bomb, docx_with_entries, fdx_element_flood, pdf_flate_bomb

DEFAULTS = SourceLimits()
# Container checks off (only the size limit and the memory ceiling stay): what trips then is the ceiling.
CHECKS_OFF = SourceLimits(
    max_expanded_bytes=1 << 40, max_compression_ratio=1e12, max_markup_tags=1 << 40, reader_memory_bytes=160 * MIB
)


def test_a_docx_bomb_is_refused_on_its_directory_before_inflating(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx", expanded_mib=1536)
    assert bomb.stat().st_size < 2 * MIB
    with pytest.raises(SourceLimitError) as caught:
        read_source(bomb, DEFAULTS)
    message = str(caught.value)
    assert message.startswith("bomb.docx (docx): it expands to 1,536.0 MiB (word/document.xml alone")
    assert "64.0 MiB limit on uncompressed content (CINEFORGE_MAX_EXPANDED_MB)" in message
    assert caught.value.limit == "CINEFORGE_MAX_EXPANDED_MB"


def test_a_small_docx_bomb_trips_the_compression_ratio(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "small.docx", expanded_mib=40)  # under the 64 MiB total
    with pytest.raises(SourceLimitError, match=r"word/document.xml is compressed [\d,]+:1, over the 100:1"):
        read_source(bomb, DEFAULTS)


def test_a_docx_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    path = docx_with_entries(tmp_path / "many.docx", entries=1_200)
    with pytest.raises(SourceLimitError, match="1,203 entries, over the limit of 1,000"):
        read_source(path, DEFAULTS)


def test_an_fdx_element_flood_is_refused_before_parsing(tmp_path: Path) -> None:
    flood = fdx_element_flood(tmp_path / "flood.fdx", elements=2_000_000)
    assert flood.stat().st_size < DEFAULTS.max_source_bytes
    with pytest.raises(SourceLimitError) as caught:
        read_source(flood, DEFAULTS)
    assert "flood.fdx (fdx): it has over 2,000,00" in str(caught.value)
    assert caught.value.limit == "max_markup_tags"


def test_a_pdf_flate_bomb_is_refused_before_pypdf_opens_it(tmp_path: Path) -> None:
    bomb = pdf_flate_bomb(tmp_path / "bomb.pdf", expanded_mib=200)
    with pytest.raises(SourceLimitError) as caught:
        read_source(bomb, DEFAULTS)
    assert "bomb.pdf (pdf): its compressed streams expand to over 64." in str(caught.value)
    assert caught.value.limit == "CINEFORGE_MAX_EXPANDED_MB"
    small = pdf_flate_bomb(tmp_path / "small.pdf", expanded_mib=20)
    with pytest.raises(SourceLimitError, match="compressed [\\d,]+:1, over the 100:1 limit"):
        read_source(small, DEFAULTS)


def test_pdf_page_and_object_counts_are_limited() -> None:
    sample = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.pdf"
    data = sample.read_bytes()
    with pytest.raises(SourceLimitError, match="pages, over the limit of 1"):
        screen_source(sample, data, SourceLimits(max_pdf_pages=1))
    with pytest.raises(SourceLimitError, match="objects, over the limit of 5"):
        screen_source(sample, data, SourceLimits(max_pdf_objects=5))


def test_every_real_screenplay_passes_the_default_limits(corpus_dir: Path) -> None:
    files = [*corpus_dir.glob("*.*"), *(corpus_dir / "real-world").glob("*.pdf"), *(REPO_ROOT / "samples").glob("*.*")]
    screened = {path.name: screen_source(path, path.read_bytes(), DEFAULTS)[0] for path in files
                if path.suffix in (".pdf", ".fdx", ".fountain", ".docx")}
    assert {"pdf", "fdx", "fountain"} <= set(screened.values()) and len(screened) >= 12


def test_the_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.fountain"
    with big.open("wb") as out:
        out.truncate(11 * MIB)  # sparse: nothing is written or read
    with pytest.raises(SourceLimitError) as caught:
        read_source(big, DEFAULTS)
    assert "big.fountain (fountain): the file is 11,534,336 bytes, over the 10,485,760-byte limit" in str(caught.value)
    assert caught.value.limit == "CINEFORGE_MAX_SOURCE_MB"


def test_limits_from_env() -> None:
    limits = SourceLimits.from_env({"CINEFORGE_MAX_SOURCE_MB": "2", "CINEFORGE_READER_MEMORY_MB": "300"})
    assert limits.max_source_bytes == 2 * MIB and limits.reader_memory_bytes == 300 * MIB
    assert SourceLimits.from_env({}) == DEFAULTS
    with pytest.raises(ValueError):
        SourceLimits(max_source_bytes=0)


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.fountain"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="not a regular file"):
        read_bounded(fifo, DEFAULTS)  # and it does not wait for a writer
    target = tmp_path / "real.fountain"
    target.write_text("INT. HOUSE - DAY\n")
    link = tmp_path / "link.fountain"
    link.symlink_to(target)
    with pytest.raises(NotARegularFileError, match="symbolic link"):
        read_bounded(link, DEFAULTS, follow_symlinks=False)
    assert read_bounded(link, DEFAULTS) == target.read_bytes()


# ------------------------------------------------------------------------------ the isolated reader


def test_the_isolated_reader_returns_what_the_reader_returns(corpus_dir: Path) -> None:
    path = corpus_dir / "The-Last-Birthday-Card.pdf"
    assert read_source_isolated(path, DEFAULTS) == read_source(path, DEFAULTS)


def test_the_isolated_reader_raises_the_readers_own_errors(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("INT. HOUSE - DAY\n")
    with pytest.raises(CorruptSourceError, match="fake.pdf \\(pdf\\): the file is named .pdf but has no PDF header"):
        read_source_isolated(path, DEFAULTS)
    bomb = docx_bomb(tmp_path / "bomb.docx", expanded_mib=1536)
    with pytest.raises(SourceLimitError) as caught:
        read_source_isolated(bomb, DEFAULTS)
    assert caught.value.limit == "CINEFORGE_MAX_EXPANDED_MB"


def test_the_memory_ceiling_stops_a_bomb_that_passed_the_checks(tmp_path: Path) -> None:
    """With every container check switched off, python-docx inflates the bomb and meets the ceiling."""
    bomb = docx_bomb(tmp_path / "bomb.docx", expanded_mib=400)
    with pytest.raises(SourceLimitError) as caught:
        read_source_isolated(bomb, CHECKS_OFF)
    assert "bomb.docx (docx): reading it needed more than 160 MiB, the memory ceiling of the reader" in str(
        caught.value
    )
    assert caught.value.limit == "CINEFORGE_READER_MEMORY_MB"


def test_the_reader_has_a_wall_clock_limit(corpus_dir: Path) -> None:
    limits = SourceLimits(reader_timeout_seconds=0.001)  # shorter than any interpreter's start-up
    with pytest.raises(SourceLimitError) as caught:
        read_source_isolated(corpus_dir / "Big-Fish.pdf", limits)
    assert "longer than 0.001 s" in str(caught.value) and caught.value.limit == "CINEFORGE_READER_TIMEOUT_SECONDS"


def test_a_memory_ceiling_too_low_to_load_the_readers_is_refused_as_configuration() -> None:
    with pytest.raises(ValueError, match="reader_memory_bytes must be >= 128 MiB"):
        SourceLimits(reader_memory_bytes=24 * MIB)
