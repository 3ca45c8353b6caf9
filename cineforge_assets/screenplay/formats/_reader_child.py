"""The child process of ``isolated.read_source_isolated``: ``python -s -P _reader_child.py PATH LIMITS_JSON``.

Only the standard library is imported before the memory ceiling is set; then ``read_source`` runs and one
JSON object goes to stdout: ``{"raw": RawSource}`` or ``{"error": {type, path, format, problem, hint,
limit}}``. Exit status 3 means memory ran out even for the report.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
MEMORY_EXIT = 3


def main(argv: list[str]) -> int:
    limit_values = json.loads(argv[1])
    ceiling = int(limit_values["reader_memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    sys.path.insert(0, str(PACKAGE_ROOT))  # run by path under -P: the package root is not on it
    from cineforge_assets.screenplay.formats.errors import SourceError
    from cineforge_assets.screenplay.formats.isolated import memory_error
    from cineforge_assets.screenplay.formats.limits import SourceLimits
    from cineforge_assets.screenplay.formats.reader import read_source

    limits = SourceLimits(**limit_values)
    path = Path(argv[0])
    try:
        out: dict[str, Any] = {"raw": read_source(path, limits).model_dump(mode="json")}
    except MemoryError:
        out = {"error": _error_json(memory_error(path, limits))}
    except SourceError as exc:
        out = {"error": _error_json(exc)}
    sys.stdout.write(json.dumps(out))
    return 0


def _error_json(exc: Any) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "path": str(exc.path),
        "format": exc.format,
        "problem": exc.problem,
        "hint": exc.hint,
        "limit": getattr(exc, "limit", None),
    }


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except MemoryError:
        os._exit(MEMORY_EXIT)
