"""Hostile source files for tests and ``bench/memory.py``: decompression bombs built in milliseconds.

A bomb is built from one compressed 1 MiB segment repeated: a raw deflate segment ended with a full flush
stands alone (byte-aligned, no back-references into earlier data), so N copies followed by a final block
inflate to N MiB while building costs one compression of 1 MiB and a CRC pass. Nothing here inflates the
bomb; the point of the tests is that the limits trip before anything does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

MIB = 1024 * 1024

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="word/document.xml"/></Relationships>'
)


class _Member:
    """One zip entry: its raw deflate data (as pieces), CRC-32 and inflated size."""

    def __init__(self, name: str, pieces: Iterable[bytes], crc: int, size: int) -> None:
        self.name, self.pieces, self.crc, self.size = name.encode(), list(pieces), crc, size

    @classmethod
    def of(cls, name: str, data: bytes) -> _Member:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        return cls(name, [deflate.compress(data) + deflate.flush()], zlib.crc32(data), len(data))

    @classmethod
    def repeated(cls, name: str, head: bytes, unit: bytes, repeats: int, tail: bytes) -> _Member:
        """``head + unit * repeats + tail``, deflated by repeating one full-flushed segment of ``unit``."""
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
        segment_maker = zlib.compressobj(9, zlib.DEFLATED, -15)
        segment = segment_maker.compress(unit) + segment_maker.flush(zlib.Z_FULL_FLUSH)
        closer = zlib.compressobj(9, zlib.DEFLATED, -15)
        last = closer.compress(tail) + closer.flush()
        crc = zlib.crc32(head)
        for _ in range(repeats):
            crc = zlib.crc32(unit, crc)
        crc = zlib.crc32(tail, crc)
        return cls(name, [first, *([segment] * repeats), last], crc, len(head) + len(unit) * repeats + len(tail))


def _write_zip(path: Path, members: list[_Member]) -> Path:
    """A plain (non-zip64) archive written by hand, since ``zipfile`` cannot take pre-deflated data."""
    central = b""
    with path.open("wb") as out:
        for member in members:
            offset = out.tell()
            compressed = sum(len(p) for p in member.pieces)
            fields = (20, 0, 8, 0, 0, member.crc, compressed, member.size, len(member.name), 0)
            out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + member.name)
            for piece in member.pieces:
                out.write(piece)
            central += struct.pack(
                "<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset
            ) + member.name
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0))
    return path


def docx_bomb(path: Path, expanded_mib: int = 1536) -> Path:
    """A .docx whose ``word/document.xml`` inflates to ``expanded_mib`` MiB of one paragraph's text."""
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {_W}><w:body><w:p><w:r><w:t>'
    tail = "</w:t></w:r></w:p></w:body></w:document>"
    return _write_zip(
        path,
        [
            _Member.of("[Content_Types].xml", _CONTENT_TYPES),
            _Member.of("_rels/.rels", _RELS),
            _Member.repeated("word/document.xml", head.encode(), b"A" * MIB, expanded_mib, tail.encode()),
        ],
    )


def docx_with_entries(path: Path, entries: int) -> Path:
    """A small valid-looking .docx padded with ``entries`` tiny extra parts."""
    paragraph = "<w:p><w:r><w:t>INT. HOUSE</w:t></w:r></w:p>"
    body = f'<?xml version="1.0"?><w:document {_W}><w:body>{paragraph}</w:body></w:document>'
    members = [_Member.of("[Content_Types].xml", _CONTENT_TYPES), _Member.of("_rels/.rels", _RELS),
               _Member.of("word/document.xml", body.encode())]
    members += [_Member.of(f"customXml/item{i}.bin", b"x") for i in range(entries)]
    return _write_zip(path, members)


def fdx_element_flood(path: Path, elements: int = 2_000_000) -> Path:
    """A Final Draft document of ``elements`` empty elements (4 bytes each): small file, huge tree."""
    path.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<FinalDraft DocumentType="Script" Version="1"><Content>'
        + b"<a/>" * elements
        + b"</Content></FinalDraft>\n"
    )
    return path


def pdf_flate_bomb(path: Path, expanded_mib: int = 1536) -> Path:
    """A one-page PDF whose content stream is FlateDecode of ``expanded_mib`` MiB of spaces."""
    head, unit, tail = b"BT /F1 12 Tf 72 720 Td (INT. HOUSE - DAY) Tj ET\n", b" " * MIB, b"\n"
    member = _Member.repeated("content", head, unit, expanded_mib, tail)
    # The pieces are raw deflate; a PDF FlateDecode stream is zlib: a 2-byte header and an Adler-32 trailer.
    adler = zlib.adler32(head)
    for _ in range(expanded_mib):
        adler = zlib.adler32(unit, adler)
    adler = zlib.adler32(tail, adler)
    stream_len = 2 + sum(len(p) for p in member.pieces) + 4
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ]
    offsets: list[int] = []
    with path.open("wb") as out:
        out.write(b"%PDF-1.7\n")
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n" % number)
            if body is None:
                out.write(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % stream_len)
                out.write(b"\x78\xda")
                for piece in member.pieces:
                    out.write(piece)
                out.write(struct.pack(">L", adler))
                out.write(b"\nendstream")
            else:
                out.write(body)
            out.write(b"\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return path
