"""OCR of scanned screenplays: real ocrmypdf/Tesseract on rasterised corpus pages, and clear errors without it.

The fidelity tests turn real corpus pages into pictures (``scans.py`` writes an image-only PDF, as
a scanner would), read that through ``read_source`` and compare the scene headings with the
text-layer read of the very same pages. The error tests hide programs from PATH or put small
stand-in ``ocrmypdf`` scripts first on it; no code is patched.
"""

from __future__ import annotations

import io
import shutil
import stat
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from cineforge_assets.screenplay.fidelity import SceneDigest, ScriptDigest, compare, digest_fountain
from cineforge_assets.screenplay.formats import ocr
from cineforge_assets.screenplay.formats.errors import ScannedPdfError
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain

from .scans import mixed_pdf, page_range_pdf, scanned_pdf

HEADING_F1_FLOOR = 0.95

needs_ocr = pytest.mark.skipif(
    bool(ocr.missing_ocr_programs()), reason="ocrmypdf/tesseract not installed (.ci/run installs them)"
)


def _blank_scan() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (850, 1100), 255).save(buffer, format="PDF", resolution=100.0)
    return buffer.getvalue()


def _fold_apostrophes(digest: ScriptDigest) -> ScriptDigest:
    """’ and ' are one glyph shape in Courier: a scan cannot tell which one the file had encoded."""
    return ScriptDigest(
        scenes=[SceneDigest(s.heading.replace("\u2019", "'"), s.characters) for s in digest.scenes],
        speeches=digest.speeches,
    )


@needs_ocr
@pytest.mark.parametrize(
    ("relative", "first", "last"),
    [
        ("Big-Fish.pdf", 1, 9),  # rendered from Fountain: 11 headings on these pages
        ("real-world/suits-pilot.pdf", 2, 10),  # Final Draft for Windows: 13 headings, deep cue indent
    ],
)
def test_scanned_pages_give_the_headings_of_their_text_layer(
    corpus: Path, tmp_path: Path, relative: str, first: int, last: int
) -> None:
    source = corpus / relative
    if not source.exists():
        pytest.skip(f"{source} not in the corpus")
    text_pdf, scan_pdf = tmp_path / "text.pdf", tmp_path / "scan.pdf"
    text_pdf.write_bytes(page_range_pdf(source, first, last))
    scan_pdf.write_bytes(scanned_pdf(source, first, last))
    assert PdfReader(scan_pdf).pages[0].extract_text().strip() == ""  # really image-only

    from_text = read_source(text_pdf)
    from_scan = read_source(scan_pdf)

    assert from_scan.page_count == last - first
    assert any("OCR" in warning for warning in from_scan.warnings)
    reference = _fold_apostrophes(digest_fountain(from_text.text)[0])
    recognised = _fold_apostrophes(digest_fountain(from_scan.text)[0])
    assert len(reference.headings) >= 8  # the pages hold enough headings for F1 to mean something
    report = compare(reference, recognised)
    assert report.headings.f1 >= HEADING_F1_FLOOR, (reference.headings, recognised.headings)


def _headings(text: str) -> list[str]:
    return _fold_apostrophes(digest_fountain(text)[0]).headings


@needs_ocr
@pytest.mark.parametrize(
    ("scanned", "what"),
    [
        ({2, 3, 4}, "three scanned insert pages in a typed draft"),
        (set(range(1, 8)), "a typed title page on a scanned script"),
    ],
)
def test_scanned_pages_of_a_typed_pdf_are_ocred_and_the_rest_read_as_text(
    corpus: Path, tmp_path: Path, scanned: set[int], what: str
) -> None:
    source = corpus / "Big-Fish.pdf"  # page 0: the title page; pages 1-7: 9 scene headings
    text_pdf, mixed = tmp_path / "text.pdf", tmp_path / "mixed.pdf"
    text_pdf.write_bytes(page_range_pdf(source, 0, 8))
    mixed.write_bytes(mixed_pdf(source, 0, 8, scanned))
    assert [bool(page.extract_text().strip()) for page in PdfReader(mixed).pages] == [
        index not in scanned for index in range(8)
    ]

    from_text, from_mixed = read_source(text_pdf), read_source(mixed)

    printed = ", ".join(str(page + 1) for page in sorted(scanned))
    assert f"page(s) {printed} had no text layer; text recovered with OCR (check names and numbers)" in (
        from_mixed.warnings
    ), what
    reference, recognised = _headings(from_text.text), _headings(from_mixed.text)
    assert len(reference) >= 8
    report = compare(digest_fountain(from_text.text)[0], digest_fountain(from_mixed.text)[0])
    assert report.headings.f1 >= HEADING_F1_FLOOR, (reference, recognised)
    assert parse_fountain(from_mixed.text).title_page["title"] == ["Big Fish"]  # the typed title page


def test_without_ocr_a_typed_pdf_with_scanned_pages_keeps_its_typed_pages_and_names_the_others(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed = tmp_path / "mixed.pdf"
    mixed.write_bytes(mixed_pdf(corpus / "Big-Fish.pdf", 0, 8, {2, 3, 4}, dpi=100))
    monkeypatch.setenv("PATH", _path_with(tmp_path, {}))

    raw = read_source(mixed)

    assert any(w.startswith("page(s) 3, 4, 5 are scanned images and were left out") for w in raw.warnings)
    assert any("apt-get install ocrmypdf" in w for w in raw.warnings)
    assert parse_fountain(raw.text).title_page["title"] == ["Big Fish"]
    assert "INT. A.P. NEWSROOM (PARIS) - DAY" in raw.text and "CAMPFIRE" not in raw.text


def test_a_blank_page_without_a_picture_is_not_sent_to_ocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.pdf_traits import render_pdf_module

    module = render_pdf_module()
    script = parse_fountain("INT. HALL - DAY\n\nAnna waits.\n\n===\n\nEXT. YARD - DAY\n\nBen waits.\n")
    pdf = module.render(script, style=module.Style())
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(pdf))))
    writer.insert_blank_page(index=1)
    path = tmp_path / "blank-inside.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    monkeypatch.setenv("PATH", _path_with(tmp_path, {}))  # OCR would fail: it must not be asked

    raw = read_source(path)

    assert raw.warnings == [] or not any("scanned" in w or "OCR" in w for w in raw.warnings)
    assert "EXT. YARD - DAY" in raw.text


def test_ocr_command_limits_ocr_to_the_scanned_pages(tmp_path: Path) -> None:
    paths = (tmp_path / "in.pdf", tmp_path / "out.pdf", tmp_path / "c.cfg")
    command = ocr.ocr_command("ocrmypdf", *paths, jobs=1, pages=[0, 3, 4])
    assert dict(zip(command, command[1:], strict=False))["--pages"] == "1,4,5"
    assert "--force-ocr" in command  # a scanned page's stray marks do not spare it
    assert "--pages" not in ocr.ocr_command("ocrmypdf", *paths, jobs=1)


@needs_ocr
def test_scan_of_a_blank_page_says_ocr_found_no_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.pdf"
    path.write_bytes(_blank_scan())

    with pytest.raises(ScannedPdfError) as caught:
        read_source(path)

    assert "blank.pdf" in str(caught.value) and "OCR found no text" in str(caught.value)


def _path_with(tmp_path: Path, programs: dict[str, str | None]) -> str:
    """A PATH holding only ``programs``: a real one (value None, linked from this machine's PATH) or a script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in programs.items():
        target = bin_dir / name
        if script is None:
            real = shutil.which(name)
            if real is None:
                pytest.skip(f"{name} not installed")
            target.symlink_to(real)
        else:
            target.write_text("#!/bin/sh\n" + script, encoding="utf-8")
            target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir)


def _scan_file(tmp_path: Path) -> Path:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_blank_scan())
    return path


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ({"tesseract": None}, "ocrmypdf not found"),
        ({"ocrmypdf": None}, "tesseract not found"),
        ({}, "ocrmypdf and tesseract not found"),
    ],
)
def test_without_ocr_programs_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: dict[str, str | None], named: str
) -> None:
    path = _scan_file(tmp_path)
    monkeypatch.setenv("PATH", _path_with(tmp_path, present))

    with pytest.raises(ScannedPdfError) as caught:
        read_source(path)

    message = str(caught.value)
    assert "scan.pdf" in message and named in message
    assert "apt-get install ocrmypdf tesseract-ocr tesseract-ocr-eng" in message
    assert "brew install ocrmypdf" in message


def test_ocrmypdf_failure_reports_its_exit_code_and_last_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = "echo 'starting' >&2\necho 'MissingDependencyError: OCR engine has no data for eng' >&2\nexit 3\n"
    path = _scan_file(tmp_path)
    monkeypatch.setenv("PATH", _path_with(tmp_path, {"ocrmypdf": failing, "tesseract": "exit 0\n"}))

    with pytest.raises(ScannedPdfError) as caught:
        read_source(path)

    message = str(caught.value)
    assert "ocrmypdf exit 3" in message
    assert "a program or language pack OCR needs is missing" in message
    assert "OCR engine has no data for eng" in message


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a killed orphan may linger as a zombie until init reaps it


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process state from /proc")
def test_ocr_past_its_budget_fails_clearly_and_stops_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in ocrmypdf that starts a worker (as ocrmypdf starts Tesseract) and never finishes.
    pid_file = tmp_path / "worker.pid"
    hanging = f"sleep 300 &\necho $! > {pid_file}\nwait\n"
    path = _scan_file(tmp_path)
    monkeypatch.setenv("PATH", _path_with(tmp_path, {"ocrmypdf": hanging, "tesseract": "exit 0\n"}) + ":/bin")

    with pytest.raises(ScannedPdfError) as caught:
        ocr.add_text_layer(path.read_bytes(), path, page_count=1, timeout_s=3)

    assert "did not finish within 3 s" in str(caught.value)
    worker = int(pid_file.read_text())
    assert not _alive(worker)


def test_ocr_command_skips_pdfa_and_optimisation_bans_dashes_and_thresholds_locally(tmp_path: Path) -> None:
    command = ocr.ocr_command("ocrmypdf", tmp_path / "in.pdf", tmp_path / "out.pdf", tmp_path / "c.cfg", jobs=2)
    pairs = dict(zip(command, command[1:], strict=False))
    assert pairs["--output-type"] == "pdf" and pairs["--optimize"] == "0"
    assert pairs["--jobs"] == "2" and pairs["--language"] == "eng"
    assert pairs["--tesseract-thresholding"] == "sauvola"
    assert "\u2014" in ocr.TESSERACT_CONFIG and "\u2013" in ocr.TESSERACT_CONFIG


def test_ocr_budget_and_workers_scale_with_pages() -> None:
    assert ocr.ocr_timeout_s(120) > ocr.ocr_timeout_s(10) >= 10 * ocr.OCR_TIMEOUT_PER_PAGE_S
    assert ocr.ocr_jobs(3, cpu_count=8) == 3
    assert ocr.ocr_jobs(40, cpu_count=2) == 2
    assert ocr.ocr_jobs(0, cpu_count=2) == 1
