"""read_source: one entry point, provenance recorded, every bad file a clear SourceError."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cineforge_assets.screenplay.formats.errors import EmptySourceError, SourceError, UnsupportedSourceError
from cineforge_assets.screenplay.formats.reader import RawSource, read_source

from .conftest import REPO_ROOT, fidelity

SCRIPT = "INT. ATTIC - NIGHT\r\n\r\nDust.\r\n\r\nMARA\r\nWho’s there?\r\n"


def test_fountain_is_returned_as_written_with_newlines_normalised(tmp_path: Path) -> None:
    path = tmp_path / "attic.fountain"
    path.write_bytes(SCRIPT.encode("utf-8"))
    raw = read_source(path)
    assert isinstance(raw, RawSource)
    assert raw.format == "fountain" and raw.confidence >= 0.8
    assert raw.text == SCRIPT.replace("\r\n", "\n")
    assert raw.file_name == "attic.fountain" and raw.source_path == str(path)
    assert raw.byte_size == len(SCRIPT.encode("utf-8"))
    assert raw.sha256 == hashlib.sha256(SCRIPT.encode("utf-8")).hexdigest()
    assert raw.page_count is None and raw.warnings == []


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.fountain"
    path.write_bytes(b"\xef\xbb\xbf" + SCRIPT.encode("utf-8"))
    assert read_source(path).text.startswith("INT. ATTIC")


def test_windows_1252_falls_back_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes(SCRIPT.replace("’", "'").replace("Dust.", "Dust \x96 caf\xe9.").encode("latin-1"))
    raw = read_source(path)
    assert "Dust – café." in raw.text
    assert any("Windows-1252" in w for w in raw.warnings)


def test_old_mac_line_endings_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "mac.fountain"
    path.write_bytes(SCRIPT.replace("\r\n", "\r").encode("utf-8"))
    assert "\r" not in read_source(path).text


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fountain"
    path.write_bytes(b"")
    with pytest.raises(EmptySourceError) as caught:
        read_source(path)
    assert "empty.fountain" in str(caught.value) and "0 bytes" in str(caught.value)


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_bytes(b" \n\t\r\n   \n")
    with pytest.raises(EmptySourceError) as caught:
        read_source(path)
    assert caught.value.format == "text" and "blank" in str(caught.value)


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.fountain"
    path.write_bytes(bytes((i * 37) % 256 for i in range(4096)))
    with pytest.raises(UnsupportedSourceError) as caught:
        read_source(path)
    assert isinstance(caught.value, SourceError) and caught.value.permanent


def test_shipped_sample_pdf_reads_back_as_its_fountain() -> None:
    sample = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger"
    raw = read_source(sample.with_suffix(".pdf"))
    assert raw.format == "pdf" and raw.page_count is not None and raw.page_count >= 6
    report = fidelity(sample.with_suffix(".fountain"), raw.text)
    assert report.headings.f1 == 1.0 and report.characters.f1 == 1.0 and report.attribution == 1.0
    assert "Title: THE LIGHTHOUSE KEEPER'S LEDGER" in raw.text
    assert ".THE LANTERN ROOM" in raw.text  # forced heading, recovered from the bold slugline


def test_utf16_text_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "unicode.fountain"
    path.write_bytes(SCRIPT.encode("utf-16"))
    raw = read_source(path)
    assert raw.format == "fountain" and raw.text == SCRIPT.replace("\r\n", "\n")
