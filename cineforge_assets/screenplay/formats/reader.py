"""Read any supported source file into screenplay-shaped Fountain text.

``read_source`` is the single entry point the ``raw_input`` asset uses: it detects the format,
runs the matching reader and returns a ``RawSource`` with the text plus provenance (hash, size,
page count, warnings). Everything that can go wrong with the file itself is a ``SourceError``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from pydantic import BaseModel, Field

from cineforge_assets.screenplay.formats.detect import UTF16_BOMS, detect_format
from cineforge_assets.screenplay.formats.emit import Conversion
from cineforge_assets.screenplay.formats.errors import EmptySourceError, NotARegularFileError
from cineforge_assets.screenplay.formats.limits import SourceLimits, check_container, check_size

# Kept for callers that imported it; the limit itself lives in ``limits.SourceLimits``.
MAX_SOURCE_BYTES = SourceLimits().max_source_bytes


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


def read_source(path: Path, limits: SourceLimits | None = None) -> RawSource:
    """Read ``path`` in this process, every limit checked before a parser sees the bytes.

    ``raw_input`` uses ``isolated.read_source_isolated``, which runs this under a memory ceiling.
    """
    path = Path(path)
    limits = limits or SourceLimits.from_env()
    data = read_bounded(path, limits)
    fmt, confidence = detect_format(path, data)
    conversion = convert(path, data, fmt, limits)
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


def read_bounded(path: Path, limits: SourceLimits, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file, its size checked by ``fstat`` on the open descriptor before reading.

    Checking the descriptor, not the name, means the file checked is the file read; reading at most one
    byte past the limit catches a file that grows after the check.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    guess = _format_guess(path)
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise NotARegularFileError(path, guess, "it is a symbolic link; links are not followed.") from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(path, guess, "it is not a regular file (a directory, device or pipe).")
        check_size(path, guess, info.st_size, limits)
        data = handle.read(limits.max_source_bytes + 1)
    check_size(path, guess, len(data), limits)
    return data


def screen_source(path: Path, data: bytes, limits: SourceLimits) -> tuple[str, float]:
    """Detect the format and check every container limit: what the inbox and the CLI run before accepting
    a file, and the reader before parsing it, so all three refuse a file with the same words."""
    fmt, confidence = detect_format(path, data)
    check_container(path, data, fmt, limits)
    return fmt, confidence


def _format_guess(path: Path) -> str:
    return {".pdf": "pdf", ".fdx": "fdx", ".docx": "docx", ".fountain": "fountain"}.get(
        path.suffix.lower(), "text"
    )


def convert(path: Path, data: bytes, fmt: str, limits: SourceLimits | None = None) -> Conversion:
    """Run the reader for ``fmt`` once the container limits pass (imports are local so a text file never
    loads pdf/docx libraries). Every format reader is reached through here, so none parses unchecked bytes."""
    check_container(path, data, fmt, limits or SourceLimits.from_env())
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
