"""How faithfully a reader recovered a screenplay, measured against a reference parse.

Both sides are reduced to a ``ScriptDigest`` (scene headings, speaking characters per scene,
speeches in order) so the metrics do not care which parser produced them. Sequences are aligned
with difflib so one missed heading costs one heading, not every scene after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from cineforge_assets.screenplay.elements import ElementType, Script
from resources.providers.screenplay_grammar import CUE_EXTENSION_RE

_MARKUP_RE = re.compile(r"[*_\\]")
_SCENE_NUMBER_RE = re.compile(r"\s*#[^#]*#\s*$")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


@dataclass(frozen=True)
class Speech:
    character: str
    text: str


@dataclass
class SceneDigest:
    heading: str  # normalised; "" for the material before the first heading
    characters: set[str] = field(default_factory=set)


@dataclass
class ScriptDigest:
    scenes: list[SceneDigest]
    speeches: list[Speech]

    @property
    def headings(self) -> list[str]:
        return [s.heading for s in self.scenes if s.heading]


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 0.0 if total == 0 else 2 * self.precision * self.recall / total


def normalise_heading(text: str) -> str:
    text = _SCENE_NUMBER_RE.sub("", _MARKUP_RE.sub("", text)).strip()
    if text.startswith(".") and not text.startswith(".."):
        text = text[1:]
    return " ".join(text.upper().split())


def normalise_character(cue: str) -> str:
    name = CUE_EXTENSION_RE.sub("", _MARKUP_RE.sub("", cue)).replace("^", "").strip().lstrip("@")
    return " ".join(name.upper().split())


def normalise_speech(text: str) -> str:
    return " ".join(_WORD_RE.findall(_MARKUP_RE.sub("", text).lower().replace("’", "'")))


class _DigestBuilder:
    def __init__(self) -> None:
        self.scenes: list[SceneDigest] = [SceneDigest(heading="")]
        self.speeches: list[Speech] = []

    def heading(self, text: str) -> None:
        self.scenes.append(SceneDigest(heading=normalise_heading(text)))

    def speech(self, cue: str, lines: list[str]) -> None:
        name = normalise_character(cue)
        if not name:
            return
        self.scenes[-1].characters.add(name)
        self.speeches.append(Speech(name, normalise_speech(" ".join(lines))))

    def digest(self) -> ScriptDigest:
        # Speakers per scene as the scenes table counts them: a group cue (``ABED / TROY``) for each member.
        try:
            from cineforge_assets.screenplay.scenes import speakers_of_cue
        except ImportError:
            return ScriptDigest(scenes=self.scenes, speeches=self.speeches)
        known = {speech.character for speech in self.speeches}
        for scene in self.scenes:
            scene.characters = {speaker for name in scene.characters for speaker in speakers_of_cue(name, known)}
        return ScriptDigest(scenes=self.scenes, speeches=self.speeches)


def digest_script(script: Script) -> ScriptDigest:
    """Digest of a parsed ``Script`` (the element contract)."""
    builder = _DigestBuilder()
    cue: str | None = None
    lines: list[str] = []

    def flush() -> None:
        nonlocal cue, lines
        if cue is not None:
            builder.speech(cue, lines)
        cue, lines = None, []

    for element in script.elements:
        if element.type == ElementType.CHARACTER:
            flush()
            cue = element.text
        elif element.type == ElementType.DIALOGUE and cue is not None:
            lines.append(element.text)
        elif element.type == ElementType.PARENTHETICAL and cue is not None:
            continue
        else:
            flush()
            if element.type == ElementType.SCENE_HEADING:
                builder.heading(element.text)
    flush()
    return builder.digest()


def digest_screenplain(fountain_text: str) -> ScriptDigest:
    """Digest of a Fountain text as parsed by screenplain (the independent reference parser)."""
    from screenplain.parsers import fountain as screenplain_fountain
    from screenplain.types import Dialog, DualDialog, Slug

    builder = _DigestBuilder()
    screenplay = screenplain_fountain.parse_lines(fountain_text.splitlines())
    for paragraph in screenplay:
        if isinstance(paragraph, Slug):
            builder.heading(str(paragraph.line))
        elif isinstance(paragraph, Dialog | DualDialog):
            dialogs = [paragraph] if isinstance(paragraph, Dialog) else [paragraph.left, paragraph.right]
            for dialog in dialogs:
                lines = [str(line) for is_paren, line in dialog.blocks if not is_paren]
                builder.speech(str(dialog.character), lines)
    return builder.digest()


def digest_scenes(
    script: Script, scene_headings: list[str], scene_characters: list[list[str]]
) -> ScriptDigest:
    """Digest from a scene split (headings and speaking characters per scene) plus the script's speeches.

    The material before the first heading is scene "" with the speakers found there.
    """
    from_elements = digest_script(script)
    scenes = [from_elements.scenes[0]] + [
        SceneDigest(heading=normalise_heading(h), characters={normalise_character(c) for c in chars})
        for h, chars in zip(scene_headings, scene_characters, strict=True)
    ]
    return ScriptDigest(scenes=scenes, speeches=from_elements.speeches)


def digest_fountain(fountain_text: str) -> tuple[ScriptDigest, str]:
    """Digest of our own output, as the pipeline sees it: the project's Fountain parser and scene
    splitter when they are importable, screenplain otherwise. Returns the digest and the parser used.
    """
    try:
        from cineforge_assets.screenplay.fountain import parse_fountain
        from cineforge_assets.screenplay.scenes import split_scenes
    except ImportError:
        return digest_screenplain(fountain_text), "screenplain"
    script = parse_fountain(fountain_text)
    records = split_scenes(script, fountain_text)
    return digest_scenes(script, [r.heading for r in records], [r.characters for r in records]), "cineforge"


def heading_score(reference: ScriptDigest, candidate: ScriptDigest) -> Score:
    ref, cand = reference.headings, candidate.headings
    matched = _matched_count(ref, cand)
    return Score(precision=_ratio(matched, len(cand)), recall=_ratio(matched, len(ref)))


def speaking_character_score(reference: ScriptDigest, candidate: ScriptDigest) -> Score:
    """F1 over (scene, character) pairs, scenes paired by aligning their headings."""
    ref_keys = [s.heading for s in reference.scenes]
    cand_keys = [s.heading for s in candidate.scenes]
    pairing: dict[int, int] = {}
    for block in SequenceMatcher(None, ref_keys, cand_keys, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            pairing[block.b + k] = block.a + k
    ref_pairs = {(i, name) for i, scene in enumerate(reference.scenes) for name in scene.characters}
    cand_pairs = {
        (pairing.get(j, -1 - j), name)
        for j, scene in enumerate(candidate.scenes)
        for name in scene.characters
    }
    matched = len(ref_pairs & cand_pairs)
    return Score(precision=_ratio(matched, len(cand_pairs)), recall=_ratio(matched, len(ref_pairs)))


def dialogue_attribution(reference: ScriptDigest, candidate: ScriptDigest) -> float:
    """Share of the reference's speeches found (same words, same order) under the same speaker."""
    ref_text = [s.text for s in reference.speeches]
    cand_text = [s.text for s in candidate.speeches]
    correct = 0
    for block in SequenceMatcher(None, ref_text, cand_text, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            if reference.speeches[block.a + k].character == candidate.speeches[block.b + k].character:
                correct += 1
    return _ratio(correct, len(reference.speeches))


@dataclass(frozen=True)
class FidelityReport:
    headings: Score
    characters: Score
    attribution: float
    reference_scenes: int
    candidate_scenes: int
    reference_speeches: int
    candidate_speeches: int


def compare(reference: ScriptDigest, candidate: ScriptDigest) -> FidelityReport:
    return FidelityReport(
        headings=heading_score(reference, candidate),
        characters=speaking_character_score(reference, candidate),
        attribution=dialogue_attribution(reference, candidate),
        reference_scenes=len(reference.headings),
        candidate_scenes=len(candidate.headings),
        reference_speeches=len(reference.speeches),
        candidate_speeches=len(candidate.speeches),
    )


def _matched_count(ref: list[str], cand: list[str]) -> int:
    return sum(b.size for b in SequenceMatcher(None, ref, cand, autojunk=False).get_matching_blocks())


def _ratio(numerator: int, denominator: int) -> float:
    return 1.0 if denominator == 0 else numerator / denominator
