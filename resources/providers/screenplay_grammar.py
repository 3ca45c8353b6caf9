"""The scene-heading grammar, written once for every reader of screenplay text.

A leaf module (standard library only) so both the domain code (``cineforge_assets.screenplay``: format
detection, the Fountain parser, the PDF/DOCX readers) and the offline engine here in ``resources/`` can
import it without ``resources/`` reaching up into ``cineforge_assets``.
"""

from __future__ import annotations

import re

# Scene heading prefixes from the Fountain spec: INT, EXT, EST, INT./EXT, INT/EXT, I/E. The longest
# alternative comes first so a capturing group around it takes ``INT./EXT`` whole, not just ``INT``.
SCENE_HEADING_PREFIX = r"(?:INT\.?/EXT\.?|I/E|INT|EXT|EST)"

# A scene heading starts with a prefix followed by a dot or a space, in any case (as the spec and
# screenplain read it). Use with ``.match``.
SCENE_HEADING_RE = re.compile(SCENE_HEADING_PREFIX + r"[ .]", re.IGNORECASE)
