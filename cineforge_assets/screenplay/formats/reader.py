"""Read any supported source file into screenplay-shaped Fountain text.

``read_source`` is the single entry point the ``raw_input`` asset uses: it detects the format,
runs the matching reader and returns a ``RawSource`` with the text plus provenance (hash, size,
page count, warnings). Everything that can go wrong with the file itself is a ``SourceError``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field

from cineforge_assets.screenplay.formats.detect import UTF16_BOMS, detect_format
from cineforge_assets.screenplay.formats.emit import Conversion
from cineforge_assets.screenplay.formats.errors import EmptySourceError, UnsupportedSourceError

# Feature scripts are well under 5 MB in any format; anything this big is not a screenplay and
# would only tie up a worker.
MAX_SOURCE_BYTES = 100_000_000


class RawSource(BaseModel):
    """A source file read into text. ``text`` is Fountain for fdx/pdf/docx, the original for fountain/text."""

    source_path: str
    file_name: str
    format: str
    confidence: float
    text: str
    page_count: int | None = None
    sha256: str
    byte_size: int
    warnings: list[str] = Field(default_factory=list)


def read_source(path: Path) -> RawSource:
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise UnsupportedSourceError(
            path,
            path.suffix.lstrip(".") or "unknown",
            f"the file is {size / 1e6:.0f} MB; screenplays are far smaller.",
            f"Files over {MAX_SOURCE_BYTES // 1_000_000} MB are refused; check that this is the script.",
        )
    data = path.read_bytes()
    fmt, confidence = detect_format(path, data)
    conversion = convert(path, data, fmt)
    if not conversion.text.strip():
        raise EmptySourceError(path, fmt, "the file contains no text (it is blank).")
    return RawSource(
        source_path=str(path),
        file_name=path.name,
        format=fmt,
        confidence=confidence,
        text=conversion.text,
        page_count=conversion.page_count,
        sha256=hashlib.sha256(data).hexdigest(),
        byte_size=len(data),
        warnings=conversion.warnings,
    )


def convert(path: Path, data: bytes, fmt: str) -> Conversion:
    """Run the reader for ``fmt`` (imports are local so a text file never loads pdf/docx libraries)."""
    if fmt == "pdf":
        from cineforge_assets.screenplay.formats.pdf import pdf_to_fountain

        return pdf_to_fountain(data, path)
    if fmt == "fdx":
        from cineforge_assets.screenplay.formats.fdx import fdx_to_fountain

        return fdx_to_fountain(data, path)
    if fmt == "docx":
        from cineforge_assets.screenplay.formats.docx import docx_to_fountain

        return docx_to_fountain(data, path)
    text, warnings = decode_text(data)
    return Conversion(text=text, page_count=None, warnings=warnings)


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """UTF-8 (with or without BOM), else Windows-1252; newlines normalised to ``\\n``."""
    warnings: list[str] = []
    if data.startswith(UTF16_BOMS):
        return normalise_newlines(data.decode("utf-16")), warnings
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
            warnings.append("file is not UTF-8; decoded as Windows-1252")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
            warnings.append("file is not UTF-8 and not clean Windows-1252; undecodable bytes replaced")
    return normalise_newlines(text), warnings


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
