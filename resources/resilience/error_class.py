"""The names of the error taxonomy's three classes (what each means: ``errors.py``).

Apart from ``errors`` so that ``telemetry`` can type an attempt's class without importing the errors, which
in turn carry the stage's attempt records: one of the two had to name the other's type, and this leaf keeps
the import graph free of cycles.
"""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal["transient", "permanent", "provider_unavailable"]
