"""The screenplay grammar, written once for every reader of screenplay text: scene headings,
transitions, character cues and their extensions.

A leaf module (standard library only) so both the domain code (``cineforge_assets.screenplay``: format
detection, the Fountain parser, the emitter that writes Fountain, the PDF/DOCX readers) and the offline
engine here in ``resources/`` can import it without ``resources/`` reaching up into ``cineforge_assets``.

The rules are the Fountain spec's as the parser applies them (``is_transition``, ``is_cue``): the emitter
asks the same questions to know when a line must be forced, so what it writes reads back as it meant.
``PRINTED_CUE_RE`` is the stricter shape used on text not yet known to be a screenplay.
"""

from __future__ import annotations

import re

# Scene heading prefixes from the Fountain spec: INT, EXT, EST, INT./EXT, INT/EXT, I/E. The longest
# alternative comes first so a capturing group around it takes ``INT./EXT`` whole, not just ``INT``.
SCENE_HEADING_PREFIX = r"(?:INT\.?/EXT\.?|I/E|INT|EXT|EST)"

# A scene heading starts with a prefix followed by a dot or a space, in any case (as the spec and
# screenplain read it). Use with ``.match``.
SCENE_HEADING_RE = re.compile(SCENE_HEADING_PREFIX + r"[ .]", re.IGNORECASE)

# ---------------------------------------------------------------- transitions

TRANSITION_SUFFIX = "TO:"


def is_transition(line: str) -> bool:
    """A transition by the spec: a line in upper case ending in ``TO:`` (``CUT TO:``, ``SMASH CUT TO:``).

    ``TO:`` alone is not one (the parser reads it as action). Whitespace around the line is ignored.
    """
    text = line.strip()
    return len(text) > len(TRANSITION_SUFFIX) and text.isupper() and text.endswith(TRANSITION_SUFFIX)


# ---------------------------------------------------------------- character cues

# ``@`` forces a cue whatever its case (``@McCLANE``).
FORCED_CUE_MARK = "@"


# ``!`` forces action: such a line is never a cue, however it is cased.
FORCED_ACTION_MARK = "!"


def is_cue(line: str) -> bool:
    """A line the parser reads as a character cue when dialogue follows it: forced with ``@``, or in upper
    case before its first extension (``EDWARD (V.O.)``, ``EDWARD (cont'd)``), and not forced to action."""
    if line.startswith(FORCED_ACTION_MARK):
        return False
    if line.startswith(FORCED_CUE_MARK) and len(line) > len(FORCED_CUE_MARK):
        return True
    return line.split("(", 1)[0].isupper()


# A cue as screenwriting software prints one: a short name in capitals (digits and ``.'-#&`` allowed, at
# most 39 characters), any extensions, ``^`` for the second speaker of dual dialogue. Stricter than
# ``is_cue``: format detection uses it to tell a screenplay from prose in capitals.
PRINTED_CUE_RE = re.compile(r"^@?[A-Z0-9][A-Z0-9 .'\-#&]{0,38}(?:\s*\([^)]*\))*\s*\^?$")

# A line in capitals as the layout readers (PDF, DOCX) judge a cue or a heading: a capital A-Z and no
# lower-case a-z (digits, punctuation and accented capitals allowed).
CAPITALS_RE = re.compile(r"^[^a-z]*[A-Z][^a-z]*$")

# ---------------------------------------------------------------- cue extensions

# One parenthesised extension after a cue's name, with the space before it: ``(V.O.)``, ``(O.S.)``,
# ``(CONT'D)``, ``(ON PHONE)``.
CUE_EXTENSION_RE = re.compile(r"\s*\([^)]*\)")

# The "continued" mark a page break or a returning speaker adds to a cue, as programs spell it: CONT'D,
# CONT’D, CONTD (each with or without a final dot), CONTINUED, CONT, CONT.
_BARE_CONTINUED = r"CONT(?:'|\u2019)?D\.?"
CONTINUED_MARK = rf"(?:{_BARE_CONTINUED}|CONTINUED|CONT\.?)"
# The mark as an extension (with the space before it), in any case: ``(CONT'D)``, ``(cont'd)``, ``(CONTINUED)``.
CONTINUED_EXTENSION_RE = re.compile(rf"\s*\({CONTINUED_MARK}\)", re.IGNORECASE)

# Where a cue's name ends: at its first extension, or at the bare ``CONT'D`` some programs print without
# parentheses (``SHERLOCK CONT'D``).
CUE_NAME_END_RE = re.compile(rf"\s*\(.*$|\s+{_BARE_CONTINUED}$", re.IGNORECASE)
