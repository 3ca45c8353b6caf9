"""OCR for PDFs without a text layer: ocrmypdf (Tesseract) adds one, and the layout reader reads it.

A scanned screenplay is pages of images. ``add_text_layer`` hands the bytes to the ``ocrmypdf``
command, which rasterises each page, runs Tesseract on it and writes a PDF whose invisible text
layer places every recognised word where it is printed; ``pdf.py`` then reads that layer exactly
as it reads a born-digital PDF, so columns, cues and headings come from positions as usual. A typed
PDF with a few scanned pages has only those OCRed (``pages``, ocrmypdf's own ``--pages``), with
``--force-ocr`` still, so a scanned page's stray text marks do not spare it (``--skip-text`` would).

Why the ``ocrmypdf`` command rather than its Python API: the supported install is the
distribution's package (Debian's ``ocrmypdf`` lives in the system ``python3``, Homebrew's in its
own), not a wheel in the project's virtualenv, and a subprocess with a timeout keeps a stuck OCR
run from holding a Dagster worker forever.

The options are chosen by measurement (``bench/ocr.py``, BENCHMARKS.md "OCR"): the output is
read once and thrown away, so PDF/A conversion and image optimisation (ocrmypdf's defaults) are
skipped; Tesseract may not emit em or en dashes, because screenplays type dashes as hyphens
(``INT. OFFICE - DAY``, ``--``) and Courier hyphens scanned were otherwise read as ``—`` often
enough to break headings (``INT. OFFICE -— DAY``); none of the seven corpus scripts prints either
dash. Sauvola (local) thresholding read headings that Tesseract's default global Otsu misread
(``MIAMT`` for ``MIAMI``, ``EXT. /INT.``) at about the same speed; a Tesseract older than 5 ignores
the option with a warning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from cineforge_assets.screenplay.formats.errors import ScannedPdfError

OCR_LANGUAGE = "eng"
# Whole-document budget: a fixed start-up allowance plus a per-page allowance far above the
# 1-5 s/page measured (idle to heavily shared two cores), so a long script on a busy worker still
# finishes but a stuck run ends.
OCR_TIMEOUT_BASE_S = 60.0
OCR_TIMEOUT_PER_PAGE_S = 15.0
# Tesseract configuration: dashes in a screenplay are typed as hyphens (see the module docstring).
TESSERACT_CONFIG = "tessedit_char_blacklist \u2014\u2013\n"

INSTALL_HINT = (
    "Install OCR and drop the file again: `sudo apt-get install ocrmypdf tesseract-ocr tesseract-ocr-eng` "
    "(Debian/Ubuntu) or `brew install ocrmypdf` (macOS, brings Tesseract); "
    "or export a text PDF from the screenwriting program."
)
OCR_FAILED_HINT = (
    "Check that `ocrmypdf --version` and `tesseract --list-langs` (must list eng) work, "
    "or export a text PDF from the screenwriting program."
)

# ocrmypdf's documented exit codes that say something a user can act on.
_EXIT_MEANINGS = {
    2: "ocrmypdf could not read the PDF",
    3: "a program or language pack OCR needs is missing",
    4: "ocrmypdf wrote an invalid PDF",
    7: "Tesseract or Ghostscript failed",
    8: "the PDF is encrypted",
}


def missing_ocr_programs() -> list[str]:
    """The OCR programs not found on PATH (ocrmypdf drives tesseract, so both must be there)."""
    return [program for program in ("ocrmypdf", "tesseract") if shutil.which(program) is None]


def ocr_timeout_s(page_count: int) -> float:
    return OCR_TIMEOUT_BASE_S + OCR_TIMEOUT_PER_PAGE_S * max(1, page_count)


def ocr_jobs(page_count: int, cpu_count: int | None = None) -> int:
    """Pages are OCRed in parallel; more workers than pages only costs start-up time."""
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(cpus, page_count))


def ocr_command(
    ocrmypdf: str,
    source: Path,
    target: Path,
    config: Path,
    *,
    jobs: int,
    language: str = OCR_LANGUAGE,
    pages: list[int] | None = None,
) -> list[str]:
    """The ocrmypdf invocation: OCR every page (or only ``pages``, 0-based), plain PDF out, no
    optimisation, Sauvola (see module docstring)."""
    only = ["--pages", ",".join(str(page + 1) for page in pages)] if pages else []
    return [
        ocrmypdf,
        "--force-ocr",  # a page with a few stray text marks is still a scan: OCR it all
        *only,  # ocrmypdf's own page selection: the other pages are copied as they are
        "--output-type",
        "pdf",
        "--optimize",
        "0",
        "--jobs",
        str(jobs),
        "--language",
        language,
        "--tesseract-config",
        str(config),
        "--tesseract-thresholding",
        "sauvola",
        "--quiet",
        str(source),
        str(target),
    ]


def add_text_layer(
    data: bytes, path: Path, page_count: int, *, timeout_s: float | None = None, pages: list[int] | None = None
) -> bytes:
    """The PDF ``data`` with a text layer recognised by OCR; ``ScannedPdfError`` saying why when it cannot be.

    ``path`` only names the file in messages; ``timeout_s`` overrides the page-scaled budget;
    ``pages`` (0-based) limits OCR to the scanned pages of a mixed document (a typed title page on a
    scanned script, scanned inserts in a typed draft), the others are left as they are.
    """
    missing = missing_ocr_programs()
    if missing:
        which = (
            f"{len(pages)} of its {page_count} page(s) have no text layer"
            if pages
            else f"none of its {page_count} page(s) has a text layer"
        )
        raise ScannedPdfError(
            path,
            "pdf",
            f"{which}, and OCR is not installed "
            f"({' and '.join(missing)} not found on PATH).",
            INSTALL_HINT,
        )
    ocrmypdf = shutil.which("ocrmypdf")
    assert ocrmypdf is not None  # checked just above
    ocr_pages = len(pages) if pages else page_count
    budget = timeout_s if timeout_s is not None else ocr_timeout_s(ocr_pages)
    with tempfile.TemporaryDirectory(prefix="cineforge-ocr-") as tmp:
        source, target, config = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf", Path(tmp) / "screenplay.cfg"
        source.write_bytes(data)
        config.write_text(TESSERACT_CONFIG, encoding="utf-8")
        command = ocr_command(ocrmypdf, source, target, config, jobs=ocr_jobs(ocr_pages), pages=pages)
        returncode, stderr = _run_in_own_group(command, budget, path, ocr_pages)
        if returncode != 0 or not target.exists():
            raise ScannedPdfError(
                path, "pdf", f"it has no text layer and OCR failed: {_failure(returncode, stderr)}.", OCR_FAILED_HINT
            )
        return target.read_bytes()


def _run_in_own_group(command: list[str], budget: float, path: Path, page_count: int) -> tuple[int, str]:
    """Run ``command``; past ``budget`` seconds kill it *and* its children.

    Hand-rolled rather than ``subprocess.run(timeout=...)`` because that kills only ocrmypdf
    itself, leaving its Tesseract and Ghostscript workers running on after the step gave up.
    """
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so one signal reaches every worker
        )
    except OSError as exc:
        raise ScannedPdfError(
            path, "pdf", f"it has no text layer and ocrmypdf could not be started ({exc}).", OCR_FAILED_HINT
        ) from exc
    try:
        _stdout, stderr = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ScannedPdfError(
            path,
            "pdf",
            f"it has no text layer and OCR of its {page_count} page(s) did not finish within {budget:.0f} s.",
            OCR_FAILED_HINT,
        ) from exc
    return process.returncode, stderr or ""


def _failure(returncode: int, stderr: str) -> str:
    """ocrmypdf's exit code, what it means and its last error line (temp paths and all: no secrets pass here)."""
    meaning = _EXIT_MEANINGS.get(returncode, "")
    last_line = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    parts = [f"ocrmypdf exit {returncode}"]
    if meaning:
        parts.append(meaning)
    if last_line:
        parts.append(last_line[:300])
    return "; ".join(parts)
