"""Errors raised while reading a source file.

All of them are permanent: retrying the same bytes gives the same answer, so callers (the
``raw_input`` asset, the sensor) should surface them to the person who dropped the file rather
than retry. Each message names the file, the format we took it for, and what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class SourceError(Exception):
    """A source file that cannot be turned into a screenplay. Permanent; never retried."""

    permanent = True
    default_hint = "Check the file and try again."

    def __init__(self, path: Path | str, format: str, problem: str, hint: str | None = None) -> None:
        self.path = Path(path)
        self.format = format
        self.problem = problem
        self.hint = hint or self.default_hint
        super().__init__(f"{self.path.name} ({format}): {problem} {self.hint}")


class EmptySourceError(SourceError):
    default_hint = "Export the screenplay again; the file has no script text in it."


class UnsupportedSourceError(SourceError):
    default_hint = (
        "Supported formats are Fountain (.fountain/.txt), Final Draft (.fdx), PDF and Word (.docx)."
    )


class ScannedPdfError(SourceError):
    default_hint = (
        "The PDF has no text layer (it is scanned images); run it through OCR "
        "(e.g. `ocrmypdf in.pdf out.pdf`) or export a text PDF from the screenwriting program."
    )


class EncryptedPdfError(SourceError):
    default_hint = (
        "Remove the password protection (re-export or print to an unprotected PDF) and drop it again."
    )


class CorruptSourceError(SourceError):
    default_hint = "The file looks damaged or truncated; export it again from the screenwriting program."


class SourceLimitError(SourceError):
    """A source file over one of the limits. Permanent: the same bytes trip the same limit.

    ``limit`` names the limit (and its environment variable where it has one) so the person who dropped
    the file knows what tripped; ``problem`` is the same text wherever the file is refused (inbox, CLI,
    ``raw_input``).
    """

    default_hint = "This is not a screenplay file we can safely read; export the script again."

    def __init__(self, path: Path | str, format: str, problem: str, limit: str, hint: str | None = None) -> None:
        self.limit = limit
        super().__init__(path, format, problem, hint)


class NotARegularFileError(SourceError):
    """A path that is a symbolic link, a directory, a device or a pipe: never read as a screenplay.

    A link could point anywhere (``/etc/shadow``) and a pipe or device never ends, so only regular files
    are read; ``cineforge ingest --follow-symlinks`` opts in to following a link the user named.
    """

    default_hint = "Pass the screenplay file itself (or `cineforge ingest --follow-symlinks` for a link)."
