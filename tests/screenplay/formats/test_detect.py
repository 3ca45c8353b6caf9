"""Format detection: magic bytes first, extension second, screenplay shape for text."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from cineforge_assets.screenplay.formats.detect import detect_format, screenplay_shape_score
from cineforge_assets.screenplay.formats.errors import (
    CorruptSourceError,
    EmptySourceError,
    SourceError,
    UnsupportedSourceError,
)

SCREENPLAY = """INT. KITCHEN - NIGHT

Rain against the window.

ANNA
(quietly)
Is he asleep?

BEN
Finally.

They both exhale.

CUT TO:

EXT. GARDEN - DAY

Sunlight.
"""

PROSE = """It was a dark and stormy night. Anna stood in the kitchen and listened to the rain.

Ben came in later. He said the boy was finally asleep, and they both let out a breath
they had been holding for most of the evening.

The next morning the garden was full of sunlight.
"""


def _zip(names: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_pdf_is_recognised_by_magic_bytes_whatever_the_extension() -> None:
    assert detect_format(Path("script.txt"), b"%PDF-1.7\n...") == ("pdf", 1.0)


def test_docx_is_a_zip_with_word_document_xml() -> None:
    data = _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<w:document/>"})
    assert detect_format(Path("draft.bin"), data) == ("docx", 1.0)


def test_a_zip_that_is_not_a_word_document_is_unsupported() -> None:
    with pytest.raises(UnsupportedSourceError):
        detect_format(Path("sheet.xlsx"), _zip({"xl/workbook.xml": b"<x/>"}))


def test_final_draft_xml_is_fdx_even_with_a_bom_and_declaration() -> None:
    data = b'\xef\xbb\xbf<?xml version="1.0"?>\n<FinalDraft DocumentType="Script"><Content/></FinalDraft>'
    assert detect_format(Path("x.xml"), data) == ("fdx", 1.0)


def test_other_xml_is_unsupported() -> None:
    with pytest.raises(UnsupportedSourceError):
        detect_format(Path("feed.xml"), b'<?xml version="1.0"?><rss/>')


def test_screenplay_shaped_text_is_fountain_prose_is_text() -> None:
    fmt, confidence = detect_format(Path("notes.txt"), SCREENPLAY.encode())
    assert fmt == "fountain" and confidence >= 0.5
    fmt, confidence = detect_format(Path("notes.txt"), PROSE.encode())
    assert fmt == "text" and confidence >= 0.5


def test_fountain_extension_wins_but_prose_lowers_confidence() -> None:
    shaped = detect_format(Path("a.fountain"), SCREENPLAY.encode())
    prose = detect_format(Path("a.fountain"), PROSE.encode())
    assert shaped[0] == prose[0] == "fountain"
    assert shaped[1] > prose[1]


def test_indented_plain_text_screenplay_counts_as_screenplay_shaped() -> None:
    indented = "\n".join(
        ("                      " + line if line.isupper() else line) for line in SCREENPLAY.split("\n")
    )
    assert screenplay_shape_score(indented) >= 0.3


def test_empty_file_is_an_empty_source() -> None:
    with pytest.raises(EmptySourceError) as caught:
        detect_format(Path("blank.fountain"), b"")
    assert "blank.fountain" in str(caught.value)


def test_binary_data_is_unsupported_with_a_helpful_message() -> None:
    with pytest.raises(UnsupportedSourceError) as caught:
        detect_format(Path("photo.jpg"), b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)))
    error = caught.value
    assert isinstance(error, SourceError) and error.permanent
    assert error.path.name == "photo.jpg"
    assert "photo.jpg" in str(error) and "Supported formats" in str(error)


@pytest.mark.parametrize(("name", "data"), [("s.pdf", b"hello"), ("s.docx", b"hello"), ("s.fdx", b"hello")])
def test_a_declared_format_without_its_content_is_corrupt(name: str, data: bytes) -> None:
    with pytest.raises(CorruptSourceError) as caught:
        detect_format(Path(name), data)
    assert caught.value.format == Path(name).suffix.lstrip(".")


def test_unknown_extension_text_is_unsupported() -> None:
    with pytest.raises(UnsupportedSourceError):
        detect_format(Path("script.rtf"), b"{\\rtf1\\ansi hello}")
