"""OCR benchmark: seconds per page and scene-heading F1 of scanned screenplay pages, per ocrmypdf setting.

    .venv/bin/python bench/ocr.py [--corpus DIR] [--no-write]

Each sample is 8 pages of a corpus PDF turned into an image-only PDF at 300 dpi
(``tests/screenplay/formats/scans.py``). Every variant OCRs the same scans with ocrmypdf; the
result is read by the project's PDF reader and its scene headings are compared with the text-layer
read of the same pages (curly and straight apostrophes folded: one glyph shape in Courier).

Variants: ``ocrmypdf defaults`` is the call the reader made before (``--force-ocr`` only: PDF/A
output through Ghostscript, image optimisation); ``chosen`` is what ``formats/ocr.py`` runs now
(``add_text_layer``: plain PDF, ``--optimize 0``, all cores, em/en dashes banned, Sauvola
thresholding); the others
change one thing in it. Results replace the ``ocr`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import machine, write_section  # noqa: E402
from cineforge_assets.screenplay.fidelity import SceneDigest, ScriptDigest, compare, digest_fountain  # noqa: E402
from cineforge_assets.screenplay.formats import ocr  # noqa: E402
from cineforge_assets.screenplay.formats.pdf import pdf_to_fountain  # noqa: E402
from tests.screenplay.formats.scans import SCAN_DPI, page_range_pdf, scanned_pdf  # noqa: E402

START, END = "<!-- ocr:start -->", "<!-- ocr:end -->"
SAMPLES = (  # (path under the corpus, first page, end page) 0-based, 8 pages each
    ("Big-Fish.pdf", 1, 9),
    ("real-world/suits-pilot.pdf", 2, 10),
    ("real-world/dexter-101-pilot.pdf", 2, 10),
)


@dataclass
class Variant:
    name: str
    extra_args: list[str]  # ocrmypdf options; "chosen" goes through add_text_layer instead
    through_module: bool = False


def _variants() -> list[Variant]:
    cpus = os.cpu_count() or 1
    chosen_base = ["--force-ocr", "--output-type", "pdf", "--optimize", "0", "--language", ocr.OCR_LANGUAGE]
    sauvola = ["--tesseract-thresholding", "sauvola"]
    return [
        Variant("ocrmypdf defaults (before)", ["--force-ocr"]),
        Variant(f"chosen (formats/ocr.py, --jobs {cpus})", [], through_module=True),
        Variant("chosen, --jobs 1", [*chosen_base, *sauvola, "--jobs", "1", "--tesseract-config", "{config}"]),
        Variant(f"chosen, dashes allowed (--jobs {cpus})", [*chosen_base, *sauvola, "--jobs", str(cpus)]),
        Variant(
            f"chosen, Tesseract's default Otsu thresholding (--jobs {cpus})",
            [*chosen_base, "--jobs", str(cpus), "--tesseract-config", "{config}"],
        ),
    ]


@dataclass
class Cell:
    sample: str
    variant: str
    seconds: float
    pages: int
    heading_f1: float
    wrong: list[str]


def _fold(digest: ScriptDigest) -> ScriptDigest:
    return ScriptDigest(
        scenes=[SceneDigest(s.heading.replace("\u2019", "'"), s.characters) for s in digest.scenes],
        speeches=digest.speeches,
    )


def _ocr(variant: Variant, scan: bytes, pages: int, workdir: Path) -> bytes:
    if variant.through_module:
        return ocr.add_text_layer(scan, workdir / "scan.pdf", pages)
    source, target, config = workdir / "in.pdf", workdir / "out.pdf", workdir / "screenplay.cfg"
    source.write_bytes(scan)
    config.write_text(ocr.TESSERACT_CONFIG, encoding="utf-8")
    args = [a.replace("{config}", str(config)) for a in variant.extra_args]
    ocrmypdf = shutil.which("ocrmypdf")
    assert ocrmypdf is not None
    subprocess.run([ocrmypdf, "--quiet", *args, str(source), str(target)], check=True, capture_output=True)
    return target.read_bytes()


def run(corpus: Path) -> list[Cell]:
    cells: list[Cell] = []
    for relative, first, last in SAMPLES:
        source = corpus / relative
        if not source.exists():
            print(f"skip {relative}: not in {corpus}", file=sys.stderr)
            continue
        pages = last - first
        label = f"{source.stem} p{first + 1}-{last}"
        reference_text = pdf_to_fountain(page_range_pdf(source, first, last), source).text
        reference = _fold(digest_fountain(reference_text)[0])
        scan = scanned_pdf(source, first, last)
        for variant in _variants():
            with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
                started = time.perf_counter()
                recognised_pdf = _ocr(variant, scan, pages, Path(tmp))
                seconds = time.perf_counter() - started
            recognised = _fold(digest_fountain(pdf_to_fountain(recognised_pdf, source).text)[0])
            report = compare(reference, recognised)
            wrong = [h for h in recognised.headings if h not in reference.headings]
            cells.append(Cell(label, variant.name, seconds, pages, report.headings.f1, wrong))
            print(f"{label:32} {variant.name:40} {seconds / pages:6.2f} s/page  heading F1 {report.headings.f1:.3f}")
    return cells


def section(cells: list[Cell], machine_line: str) -> str:
    lines = [
        START,
        "## OCR of scanned pages (`bench/ocr.py`)",
        "",
        "Command: `.venv/bin/python bench/ocr.py` (one run per cell: OCR is slow)  ",
        f"Machine: {machine_line}  ",
        f"ocrmypdf {_version(['ocrmypdf', '--version'])}, {_version(['tesseract', '--version'])} (Debian packages). "
        f"Scans: 8 pages per sample rendered at {SCAN_DPI} dpi grey into an image-only PDF; heading F1 against the "
        "text-layer read of the same pages by the same reader.",
        "",
        "| sample | variant | s/page | heading F1 | headings misread |",
        "|---|---|---|---|---|",
    ]
    for cell in cells:
        wrong = "; ".join(f"`{h}`" for h in cell.wrong) or "-"
        lines.append(
            f"| {cell.sample} | {cell.variant} | {cell.seconds / cell.pages:.2f} | {cell.heading_f1:.3f} | {wrong} |"
        )
    totals: dict[str, tuple[float, int]] = {}
    for cell in cells:
        seconds, pages = totals.get(cell.variant, (0.0, 0))
        totals[cell.variant] = (seconds + cell.seconds, pages + cell.pages)
    lines += ["", "All samples: " + "; ".join(f"{name} {s / p:.2f} s/page" for name, (s, p) in totals.items()) + "."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return (result.stdout or result.stderr).splitlines()[0].strip() if (result.stdout or result.stderr) else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    missing = ocr.missing_ocr_programs()
    if missing:
        sys.exit(f"bench/ocr.py needs {' and '.join(missing)}: {ocr.INSTALL_HINT}")
    machine_line = machine()
    cells = run(args.corpus.resolve())
    text = section(cells, machine_line)
    print(text)
    if not args.no_write:
        write_section(text, START, END)


if __name__ == "__main__":
    main()
