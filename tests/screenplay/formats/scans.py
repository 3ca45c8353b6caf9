"""Synthetic scans of real PDF pages, for the OCR tests and ``bench/ocr.py``.

PDFium (pypdfium2, which pdfplumber already brings) renders the pages as a scanner would see them,
and Pillow writes the pictures as an image-only PDF: nothing of the original text layer survives.
"""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
from pypdf import PdfReader, PdfWriter

SCAN_DPI = 300  # what office scanners default to for text


def page_range_pdf(source: Path, first: int, last: int) -> bytes:
    """Pages ``first``..``last - 1`` (0-based) of ``source``, text layer and all."""
    reader = PdfReader(source)
    writer = PdfWriter()
    for index in range(first, last):
        writer.add_page(reader.pages[index])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def scanned_pdf(source: Path, first: int, last: int, dpi: int = SCAN_DPI) -> bytes:
    """The same pages as grey-scale pictures only."""
    document = pdfium.PdfDocument(str(source))
    try:
        pages = [
            document[index].render(scale=dpi / 72, grayscale=True).to_pil().convert("L") for index in range(first, last)
        ]
    finally:
        document.close()
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
    return buffer.getvalue()


def mixed_pdf(source: Path, first: int, last: int, scanned: set[int], dpi: int = SCAN_DPI) -> bytes:
    """Pages ``first``..``last - 1`` of ``source``, those in ``scanned`` as pictures only and the rest
    with their text layer: a typed title page on a scanned script, scanned inserts in a typed draft."""
    pictures = PdfReader(io.BytesIO(scanned_pdf(source, first, last, dpi)))
    text = PdfReader(source)
    writer = PdfWriter()
    for index in range(first, last):
        writer.add_page(pictures.pages[index - first] if index in scanned else text.pages[index])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
