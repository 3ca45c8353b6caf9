"""Limits on untrusted source files, checked before any parser sees them.

A screenplay is small: text-layer exports of a feature are 0.1-2 MB in every format (the largest file of
the project's corpus, a 129-page Final Draft PDF, is 0.36 MB). A container format can still be a bomb:
a 3.6 MB ``.docx`` whose ``document.xml`` inflates to 1.5 GB, an FDX of millions of empty elements, a PDF
whose FlateDecode stream inflates without end. Every check here reads only what it needs to measure and
stops as soon as a limit trips, so the checks themselves are bounded in memory and time:

* DOCX: the zip's central directory gives each entry's declared size and compressed size (entry count,
  total, ratio); the XML parts are then streamed through the decompressor in 1 MiB chunks to count markup.
  Reading through :mod:`zipfile` never yields more than an entry's *declared* size (a lying header ends in
  a CRC error), so the declared sizes bound what python-docx can later inflate.
* FDX: markup is counted with ``bytes.count(b"<")`` (each element needs one), one pass over a file already
  under the size limit; entity declarations are refused by ``defusedxml`` before any expansion (``fdx.py``).
* PDF: every FlateDecode stream that text extraction may decode (not images) is inflated chunk by chunk
  with an output cap and the inflated bytes are discarded; objects and pages are counted on the raw bytes
  and in object streams.

What the checks cannot foresee (a parser's own appetite) is bounded by running the reader in a child
process under a memory ceiling (``isolated.py``).

The one size limit (``max_source_bytes``) is what the inbox, ``cineforge ingest`` and the reader all
check, by ``stat`` before anything is copied or read. Its default, 10 MiB, is five times the largest
text-layer screenplay export we have seen and admits a short scanned PDF; every byte of plain text
costs ~150 bytes of memory downstream (parsed elements, scene tables), so a larger default would let one
file take gigabytes. ``CINEFORGE_MAX_SOURCE_MB`` raises or lowers it.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cineforge_assets.screenplay.formats.errors import SourceLimitError

MIB = 1024 * 1024
_CHUNK = MIB
# Small parts compress very well for innocent reasons (a run of spaces); the ratio limit applies to
# parts that inflate past this size, where a high ratio means a bomb.
_RATIO_FLOOR_BYTES = MIB

MIN_READER_MEMORY_BYTES = 128 * MIB
SIZE_ENV = "CINEFORGE_MAX_SOURCE_MB"
EXPANDED_ENV = "CINEFORGE_MAX_EXPANDED_MB"
MEMORY_ENV = "CINEFORGE_READER_MEMORY_MB"
TIMEOUT_ENV = "CINEFORGE_READER_TIMEOUT_SECONDS"


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """Every limit on one source file; ``from_env`` reads the configurable ones."""

    max_source_bytes: int = 10 * MIB
    # Total bytes a container may inflate to: DOCX zip entries, PDF FlateDecode streams.
    max_expanded_bytes: int = 64 * MIB
    # Inflated / compressed, for a part that inflates past 1 MiB (XML deflates ~10:1; bombs ~1000:1).
    max_compression_ratio: float = 100.0
    max_archive_entries: int = 1_000
    # Markup tags in FDX / DOCX XML (Big Fish's FDX has ~33,000).
    max_markup_tags: int = 500_000
    max_pdf_pages: int = 1_000
    max_pdf_objects: int = 200_000
    # Address space of the reader's child process (python, pypdf, python-docx and the parse itself).
    reader_memory_bytes: int = 768 * MIB
    # Wall-clock bound on the reader's child process. OCR of a scan gets 60 s + 15 s a page (``ocr.py``),
    # so an hour lets a scanned script of ~230 pages finish while a stuck reader still ends.
    reader_timeout_seconds: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("max_source_bytes", "max_expanded_bytes", "max_archive_entries", "max_markup_tags",
                     "max_pdf_pages", "max_pdf_objects", "reader_memory_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.reader_memory_bytes < MIN_READER_MEMORY_BYTES:
            # Below this the interpreter cannot load the PDF and Word libraries: every file would fail.
            raise ValueError(f"reader_memory_bytes must be >= {MIN_READER_MEMORY_BYTES // MIB} MiB")
        if self.max_compression_ratio <= 1 or self.reader_timeout_seconds <= 0:
            raise ValueError("max_compression_ratio must be > 1 and reader_timeout_seconds > 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SourceLimits:
        """``CINEFORGE_MAX_SOURCE_MB`` (10), ``CINEFORGE_MAX_EXPANDED_MB`` (64),
        ``CINEFORGE_READER_MEMORY_MB`` (768), ``CINEFORGE_READER_TIMEOUT_SECONDS`` (3600)."""
        default = cls()

        def mib(name: str, fallback: int) -> int:
            value = environ.get(name)
            return int(float(value) * MIB) if value else fallback

        timeout = environ.get(TIMEOUT_ENV)
        return cls(
            max_source_bytes=mib(SIZE_ENV, default.max_source_bytes),
            max_expanded_bytes=mib(EXPANDED_ENV, default.max_expanded_bytes),
            reader_memory_bytes=mib(MEMORY_ENV, default.reader_memory_bytes),
            reader_timeout_seconds=float(timeout) if timeout else default.reader_timeout_seconds,
        )


def _mb(n: float) -> str:
    return f"{n / MIB:,.1f} MiB" if n >= MIB else f"{n:,.0f} bytes"


def size_problem(size: int, limits: SourceLimits) -> str | None:
    """The refusal text for a file of ``size`` bytes, or None. Shared by the inbox, the CLI and the reader."""
    if size > limits.max_source_bytes:
        return (
            f"the file is {size:,} bytes, over the {limits.max_source_bytes:,}-byte limit on source files "
            f"({SIZE_ENV}); screenplays are far smaller."
        )
    return None


def check_size(path: Path, fmt: str, size: int, limits: SourceLimits) -> None:
    problem = size_problem(size, limits)
    if problem:
        raise SourceLimitError(path, fmt, problem, SIZE_ENV, "Check that this is the script, or raise the limit.")


def check_container(path: Path, data: bytes, fmt: str, limits: SourceLimits) -> None:
    """Raise ``SourceLimitError`` when ``data`` (already detected as ``fmt``) is over a container limit."""
    if fmt == "docx":
        check_zip(path, data, limits)
    elif fmt == "fdx":
        check_xml(path, data, "fdx", limits)
    elif fmt == "pdf":
        check_pdf(path, data, limits)


# --------------------------------------------------------------------------------------------- zip


def check_zip(path: Path, data: bytes, limits: SourceLimits) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return  # detection reports a damaged zip with its own message
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_entries:
            raise SourceLimitError(
                path, "docx",
                f"the zip holds {len(infos):,} entries, over the limit of {limits.max_archive_entries:,} "
                "(a Word document has a few dozen).",
                "max_archive_entries",
            )
        total = sum(info.file_size for info in infos)
        if total > limits.max_expanded_bytes:
            largest = max(infos, key=lambda i: i.file_size)
            raise SourceLimitError(
                path, "docx",
                f"it expands to {_mb(total)} ({largest.filename} alone {_mb(largest.file_size)}), over the "
                f"{_mb(limits.max_expanded_bytes)} limit on uncompressed content ({EXPANDED_ENV}).",
                EXPANDED_ENV,
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
                raise SourceLimitError(
                    path, "docx",
                    f"{info.filename} is compressed {ratio:,.0f}:1, over the {limits.max_compression_ratio:g}:1 "
                    "limit on compression ratio (a decompression bomb).",
                    "max_compression_ratio",
                )
        tags = 0
        for info in infos:
            if not info.filename.endswith((".xml", ".rels")):
                continue
            with archive.open(info) as part:
                while chunk := part.read(_CHUNK):
                    tags += chunk.count(b"<")
            if tags > limits.max_markup_tags:
                raise _markup_error(path, "docx", tags, limits, where=f" (counted up to {info.filename})")


# --------------------------------------------------------------------------------------------- xml


def check_xml(path: Path, data: bytes, fmt: str, limits: SourceLimits) -> None:
    # Entity declarations (billion laughs) are refused by defusedxml as it meets them, before any
    # expansion; what it cannot refuse is a flood of plain elements, counted here.
    tags = data.count(b"<")
    if tags > limits.max_markup_tags:
        raise _markup_error(path, fmt, tags, limits)


def _markup_error(path: Path, fmt: str, tags: int, limits: SourceLimits, where: str = "") -> SourceLimitError:
    return SourceLimitError(
        path, fmt,
        f"it has over {tags:,} markup tags{where}, over the limit of {limits.max_markup_tags:,} "
        "(an element flood; a feature script has tens of thousands).",
        "max_markup_tags",
    )


# --------------------------------------------------------------------------------------------- pdf

_STREAM_RE = re.compile(rb"(?<!end)stream\r?\n")
_OBJ_RE = re.compile(rb"\d+\s+\d+\s+obj\b")
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_OBJSTM_N_RE = re.compile(rb"/N\s+(\d+)")
_DICT_LOOKBACK = 4096


def check_pdf(path: Path, data: bytes, limits: SourceLimits) -> None:
    """Count objects and pages, and inflate every FlateDecode stream that text extraction may decode,
    discarding the output, until a limit trips (``pypdf`` caps each stream at 75 MB, not their sum)."""
    objects = len(_OBJ_RE.findall(data))
    pages = len(_PAGE_RE.findall(data))
    expanded = 0
    for match in _STREAM_RE.finditer(data):
        head = data[max(0, match.start() - _DICT_LOOKBACK) : match.start()]
        head = head[head.rfind(b"obj") + 3 :] if b"obj" in head else head
        if b"/FlateDecode" not in head or b"/Image" in head:
            continue
        is_object_stream = b"/ObjStm" in head
        if is_object_stream and (n := _OBJSTM_N_RE.search(head)):
            objects += int(n.group(1))
        inflated, consumed, body = _inflate_bounded(
            data, match.end(), limits.max_expanded_bytes - expanded, keep=is_object_stream
        )
        expanded += inflated
        if body is not None:
            pages += len(_PAGE_RE.findall(body))
        if expanded > limits.max_expanded_bytes:
            raise SourceLimitError(
                path, "pdf",
                f"its compressed streams expand to over {_mb(expanded)}, over the "
                f"{_mb(limits.max_expanded_bytes)} limit on uncompressed content ({EXPANDED_ENV}).",
                EXPANDED_ENV,
            )
        ratio = inflated / max(consumed, 1)
        if inflated > _RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise SourceLimitError(
                path, "pdf",
                f"a stream at byte {match.end():,} is compressed {ratio:,.0f}:1, over the "
                f"{limits.max_compression_ratio:g}:1 limit on compression ratio (a decompression bomb).",
                "max_compression_ratio",
            )
    if objects > limits.max_pdf_objects:
        raise SourceLimitError(
            path, "pdf", f"it has {objects:,} objects, over the limit of {limits.max_pdf_objects:,}.",
            "max_pdf_objects",
        )
    if pages > limits.max_pdf_pages:
        raise SourceLimitError(
            path, "pdf", f"it has {pages:,} pages, over the limit of {limits.max_pdf_pages:,}.", "max_pdf_pages"
        )


def _inflate_bounded(data: bytes, start: int, budget: int, *, keep: bool) -> tuple[int, int, bytes | None]:
    """Inflate the zlib stream at ``data[start:]`` until it ends or yields more than ``budget`` bytes.

    Returns (bytes inflated, compressed bytes consumed, the output when ``keep``). A damaged stream stops
    the count where it breaks: pypdf reports damage itself.
    """
    decompressor = zlib.decompressobj()
    inflated = 0
    position = start
    kept: list[bytes] | None = [] if keep else None
    try:
        while position < len(data) and not decompressor.eof and inflated <= budget:
            pending = data[position : position + 64 * 1024]
            position += len(pending)
            while pending and inflated <= budget:
                out = decompressor.decompress(pending, _CHUNK)
                inflated += len(out)
                if kept is not None:
                    kept.append(out)
                pending = decompressor.unconsumed_tail
                if decompressor.eof:
                    break
    except zlib.error:
        pass
    consumed = position - start - len(decompressor.unused_data) - len(decompressor.unconsumed_tail)
    return inflated, max(consumed, 1), b"".join(kept) if kept is not None else None
