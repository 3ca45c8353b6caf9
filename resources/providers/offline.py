"""The deterministic offline engine: answers every task without a network, by heuristics.

It is the last fallback of the resilience chain and the brain of the loopback simulator, so its
answers always validate against the task schemas in ``prompts`` and depend only on the payload
(same input -> byte-identical output, no clocks, no randomness).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final

from resources.providers import limits, prompts
from resources.providers.base import Completion, CompletionRequest
from resources.providers.screenplay_grammar import is_cue, is_scene_heading, is_transition, parse_scene_heading

# ---------------------------------------------------------------- lexicons

# Ordered: earlier entries win ties, which keeps answers deterministic.
MOOD_LEXICON: Final[dict[str, tuple[str, ...]]] = {
    "tense": (
        "gun",
        "scream",
        "run",
        "runs",
        "chase",
        "fear",
        "afraid",
        "threat",
        "blood",
        "panic",
        "fight",
        "shout",
        "shouts",
        "danger",
        "knife",
        "storm",
        "crash",
        "grab",
        "grabs",
        "slam",
    ),
    "somber": (
        "funeral",
        "death",
        "dead",
        "die",
        "dies",
        "dying",
        "cry",
        "cries",
        "tears",
        "grave",
        "hospital",
        "grief",
        "mourn",
        "alone",
        "lonely",
        "sick",
        "loss",
        "quiet",
        "silence",
    ),
    "romantic": (
        "kiss",
        "kisses",
        "love",
        "loves",
        "wedding",
        "marry",
        "embrace",
        "romance",
        "heart",
        "darling",
        "beautiful",
        "dance",
        "dances",
    ),
    "joyful": (
        "laugh",
        "laughs",
        "smile",
        "smiles",
        "party",
        "celebrate",
        "birthday",
        "cheer",
        "happy",
        "joy",
        "grin",
        "grins",
        "sing",
        "sings",
        "applause",
    ),
    "mysterious": (
        "shadow",
        "shadows",
        "dark",
        "darkness",
        "secret",
        "strange",
        "fog",
        "mist",
        "whisper",
        "whispers",
        "witch",
        "legend",
        "myth",
        "ghost",
        "unknown",
        "hidden",
    ),
    "comedic": ("joke", "jokes", "funny", "silly", "ridiculous", "trips", "pratfall", "absurd"),
}
GENRE_LEXICON: Final[dict[str, tuple[str, ...]]] = {
    "fantasy": ("witch", "giant", "magic", "legend", "myth", "fish", "spell", "dragon", "fairy", "tale"),
    "thriller": ("gun", "murder", "kill", "detective", "police", "chase", "bomb", "spy", "threat"),
    "horror": ("blood", "ghost", "monster", "scream", "demon", "corpse", "haunted"),
    "romance": ("love", "kiss", "wedding", "marry", "romance", "date", "heart"),
    "comedy": ("joke", "funny", "laugh", "silly", "ridiculous", "party"),
    "science fiction": ("robot", "spaceship", "planet", "alien", "future", "laser", "android"),
    "drama": (
        "father",
        "mother",
        "son",
        "daughter",
        "family",
        "hospital",
        "birthday",
        "card",
        "letter",
        "home",
        "memory",
        "death",
    ),
}
TONE_LEXICON: Final[dict[str, tuple[str, ...]]] = {
    "bittersweet": (
        "death",
        "dying",
        "funeral",
        "memory",
        "remember",
        "birthday",
        "card",
        "letter",
        "goodbye",
        "father",
        "mother",
    ),
    "whimsical": ("witch", "giant", "magic", "fish", "circus", "tale", "legend", "fairy"),
    "dark": ("blood", "murder", "kill", "corpse", "demon", "gun"),
    "lighthearted": ("laugh", "joke", "funny", "party", "smile", "silly"),
    "suspenseful": ("chase", "threat", "secret", "shadow", "danger", "bomb"),
}
PLACE_NOUNS: Final[tuple[str, ...]] = (
    "living room",
    "parking lot",
    "dining room",
    "hotel room",
    "hospital room",
    "train station",
    "kitchen",
    "bedroom",
    "office",
    "street",
    "park",
    "car",
    "house",
    "apartment",
    "bar",
    "restaurant",
    "diner",
    "hospital",
    "school",
    "classroom",
    "church",
    "beach",
    "forest",
    "woods",
    "river",
    "lake",
    "garden",
    "yard",
    "station",
    "hallway",
    "road",
    "field",
    "city",
    "town",
    "store",
    "shop",
    "library",
    "rooftop",
    "alley",
    "bathroom",
    "basement",
    "attic",
    "hotel",
    "motel",
    "porch",
    "warehouse",
    "lab",
    "courtroom",
    "prison",
    "cafe",
    "bank",
    "airport",
    "train",
    "bus",
    "boat",
    "ship",
    "farm",
    "barn",
    "desert",
    "mountain",
    "cemetery",
    "circus",
    "theater",
    "studio",
    "garage",
    "cabin",
    "swamp",
    "pool",
)
OUTDOOR_PLACES: Final[frozenset[str]] = frozenset(
    {
        "street",
        "park",
        "beach",
        "forest",
        "woods",
        "river",
        "lake",
        "garden",
        "yard",
        "road",
        "field",
        "city",
        "town",
        "rooftop",
        "alley",
        "porch",
        "parking lot",
        "desert",
        "mountain",
        "cemetery",
        "farm",
        "swamp",
    }
)
TIME_WORDS: Final[tuple[tuple[str, str], ...]] = (
    ("night", "NIGHT"),
    ("midnight", "NIGHT"),
    ("evening", "EVENING"),
    ("dusk", "DUSK"),
    ("sunset", "DUSK"),
    ("dawn", "DAWN"),
    ("sunrise", "DAWN"),
    ("morning", "MORNING"),
    ("afternoon", "DAY"),
    ("noon", "DAY"),
)
LIGHT_BY_TIME: Final[dict[str, str]] = {
    "NIGHT": "at night, low practical light and deep shadows",
    "EVENING": "in the evening, warm fading light",
    "DUSK": "at dusk, amber light low on the horizon",
    "DAWN": "at dawn, cool soft light",
    "MORNING": "in the morning, clean bright light",
    "DAY": "by day, natural light",
}
# An establishing shot (EST.) shows a place from outside; INT./EXT. and I/E scenes move between both.
SETTING_BY_INT_EXT: Final[dict[str, str]] = {
    "EXT": "Exterior",
    "EST": "Exterior",
    "INT/EXT": "Interior and exterior",
}
SPEECH_VERBS: Final[str] = (
    "says|said|asks|asked|replies|replied|whispers|whispered|shouts|shouted|yells|yelled|"
    "answers|answered|mutters|muttered|tells|told|cries|cried|calls|called"
)

_WORD = re.compile(r"[a-z']+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PLACE = re.compile(
    r"\b(?:in|at|inside|outside|into|on|onto|near|by|across)\s+(?:the|a|an|his|her|their|our|my)\s+"
    r"(?:[a-z]+\s+)?(" + "|".join(re.escape(p) for p in PLACE_NOUNS) + r")\b",
    re.IGNORECASE,
)
_SPEECH_AFTER = re.compile(r"\"([^\"]+)\"\s*,?\s*([A-Z][a-z]+)\s+(?:" + SPEECH_VERBS + r")\b[^.]*\.?")
_SPEECH_BEFORE = re.compile(r"([A-Z][a-z]+)\s+(?:" + SPEECH_VERBS + r")\s*,?\s*:?\s*\"([^\"]+)\"")
_COLON_LINE = re.compile(r"^([A-Z][A-Za-z .'\-]{0,30}):\s+(.+)$")


# ---------------------------------------------------------------- small helpers


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _best_label(text: str, lexicon: dict[str, tuple[str, ...]], default: str) -> str:
    counts: dict[str, int] = {}
    words = _words(text)
    for label, keys in lexicon.items():
        keyset = set(keys)
        counts[label] = sum(1 for w in words if w in keyset)
    best = max(lexicon, key=lambda label: (counts[label], -list(lexicon).index(label)))
    return best if counts[best] > 0 else default


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _paragraphs(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def action_lines(scene_text: str) -> list[str]:
    """The action paragraphs of a Fountain scene body (skips headings, cues+dialogue, transitions)."""
    lines: list[str] = []
    for block in _paragraphs(scene_text):
        first = block[0]
        if is_scene_heading(first) or is_transition(first) or first.startswith(("[[", "=", "#", "~")):
            continue
        if len(block) > 1 and is_cue(first):
            continue  # character cue followed by dialogue
        lines.append(" ".join(line.lstrip("!") for line in block))
    return lines


# ---------------------------------------------------------------- normalize


def _looks_like_fountain(text: str) -> bool:
    return any(is_scene_heading(line.strip()) for line in text.splitlines() if line.strip())


def _time_of_day(text: str) -> str:
    words = set(_words(text))
    for word, label in TIME_WORDS:
        if word in words:
            return label
    return "DAY"


def _heading_for(place: str, paragraph: str) -> str:
    prefix = "EXT." if place.lower() in OUTDOOR_PLACES else "INT."
    return f"{prefix} {place.upper()} - {_time_of_day(paragraph)}"


def _dialogue_blocks(paragraph: str) -> list[str]:
    """Fountain blocks for one prose paragraph: quoted speech becomes cue + dialogue, the rest action."""
    colon = _COLON_LINE.match(paragraph)
    if colon and len(colon.group(1).split()) <= 3:
        return [f"{colon.group(1).upper()}\n{colon.group(2).strip()}"]
    blocks: list[str] = []
    pending_action: list[str] = []
    for sentence in _sentences(paragraph):
        speech = _SPEECH_AFTER.search(sentence)
        speaker_first = _SPEECH_BEFORE.search(sentence)
        if speech:
            speaker, line = speech.group(2), speech.group(1)
        elif speaker_first:
            speaker, line = speaker_first.group(1), speaker_first.group(2)
        else:
            pending_action.append(sentence)
            continue
        if pending_action:
            blocks.append(" ".join(pending_action))
            pending_action = []
        blocks.append(f"{speaker.upper()}\n{_spoken(line)}")
    if pending_action:
        blocks.append(" ".join(pending_action))
    return blocks


def _spoken(line: str) -> str:
    """Quoted speech as a dialogue line: ``Happy birthday, Dad,`` -> ``Happy birthday, Dad.``."""
    line = line.strip().rstrip(",;:").strip()
    return line if line.endswith((".", "!", "?", "…", "-")) else line + "."


def _tidy_fountain(text: str) -> str:
    """Already-Fountain input: normalise line endings, trailing spaces and blank-line runs only."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return tidy + "\n"


def normalize_text(text: str, title: str = "") -> str:
    """Prose (or loosely formatted script text) -> Fountain."""
    if _looks_like_fountain(text):
        return _tidy_fountain(text)
    out: list[str] = []
    if title:
        out.append(f"Title: {title.strip()}")
    current_place = ""
    for block in _paragraphs(text):
        paragraph = " ".join(block)
        if title and not current_place and paragraph.strip().lower() == title.strip().lower():
            continue  # the prose repeats its own title as a first line
        if is_transition(paragraph):
            out.append(paragraph.strip())
            continue
        place_match = _PLACE.search(paragraph)
        place = place_match.group(1).lower() if place_match else ""
        if place and place != current_place:
            out.append(_heading_for(place, paragraph))
            current_place = place
        elif not current_place:
            out.append(f"INT. UNSPECIFIED LOCATION - {_time_of_day(paragraph)}")
            current_place = "unspecified location"
        out.extend(_dialogue_blocks(paragraph))
    if not out or (title and len(out) == 1):
        out.append("INT. UNSPECIFIED LOCATION - DAY")
    return "\n\n".join(out).strip() + "\n"


# ---------------------------------------------------------------- enrich_scenes


def _scene_summary(scene: prompts.SceneInput, actions: list[str]) -> str:
    sentences = [s for line in actions for s in _sentences(line)]
    if sentences:
        return _clip(" ".join(sentences[:2]), 280)
    who = ", ".join(c.title() for c in scene.characters[:3])
    where = parse_scene_heading(scene.heading).location.title() or f"scene {scene.scene_number}"
    return f"{who} talk at {where}." if who else f"A scene at {where}."


def _visual_description(scene: prompts.SceneInput, actions: list[str]) -> str:
    heading = parse_scene_heading(scene.heading)
    setting = SETTING_BY_INT_EXT.get(heading.int_ext, "Interior")
    place_text = heading.location.lower() or "an unspecified location"
    light = LIGHT_BY_TIME.get(heading.time_of_day, "in natural light")
    first_action = _clip(actions[0], 200) if actions else "a quiet establishing view"
    return _clip(f"{setting}, {place_text}, {light}. {first_action}", 400)


def enrich_scenes(payload: dict[str, Any]) -> dict[str, Any]:
    checked = prompts.EnrichScenesPayload.model_validate(payload)
    scenes: list[dict[str, Any]] = []
    for scene in checked.scenes:
        actions = action_lines(scene.text)
        scenes.append(
            {
                "scene_number": scene.scene_number,
                "summary": _scene_summary(scene, actions),
                "mood": _best_label(f"{scene.heading}\n{scene.text}", MOOD_LEXICON, "neutral"),
                "visual_description": _visual_description(scene, actions),
            }
        )
    return {"scenes": scenes}


# ---------------------------------------------------------------- project_insights


def _join_names(names: Iterable[str]) -> str:
    names = [n.strip().title() for n in names if n.strip()]
    if not names:
        return "its characters"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def project_insights(payload: dict[str, Any]) -> dict[str, Any]:
    checked = prompts.ProjectInsightsPayload.model_validate(payload)
    corpus = " ".join([checked.title, checked.excerpt, *checked.scene_summaries])
    genre = _best_label(corpus, GENRE_LEXICON, "drama")
    tone = _best_label(corpus, TONE_LEXICON, "earnest")
    title = checked.title.strip() or "Untitled"
    lead, *others = checked.characters[:3] or [""]
    if lead:
        with_others = f", with {_join_names(others)}," if others else ""
        article = "an" if tone[:1].lower() in "aeiou" else "a"
        logline = f"In {title}, {lead.strip().title()}{with_others} is pulled into {article} {tone} {genre} story."
    else:
        logline = f"{title} is a {tone} {genre} story."
    return {"genre": genre, "tone": tone, "logline": logline}


# ---------------------------------------------------------------- dispatch


def normalize(payload: dict[str, Any]) -> dict[str, Any]:
    checked = prompts.NormalizePayload.model_validate(payload)
    return {"fountain": normalize_text(checked.text, checked.title)}


_HANDLERS = {"normalize": normalize, "enrich_scenes": enrich_scenes, "project_insights": project_insights}


def generic_answer(prompt_text: str = "") -> dict[str, Any]:
    """A valid JSON answer for prompts that carry no known task marker."""
    words = len(prompt_text.split())
    return {"answer": "Offline engine response.", "input_words": words}


def answer(task: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A schema-valid answer for ``task``; ``ValueError`` for an unknown task or an unusable payload."""
    handler = _HANDLERS.get(task)
    if handler is None:
        raise ValueError(f"offline engine has no task {task!r}")
    result = handler(payload)
    prompts.RESPONSE_MODELS[task].model_validate(result)  # the engine's own contract, checked every time
    return result


def answer_prompt(system: str, prompt: str) -> tuple[str | None, dict[str, Any]]:
    """Answer from raw prompt text as a model would see it: ``(task or None, answer dict)``."""
    task, payload = prompts.extract_task_and_input(system, prompt)
    if task in _HANDLERS and payload is not None:
        try:
            return task, answer(task, payload)
        except ValueError:
            pass
    return None, generic_answer(f"{system}\n{prompt}")


# Usage figures use the limits table's estimate, the one the simulator reports and stages size work with.
estimate_tokens = limits.estimate_tokens


class OfflineAdapter:
    """``ProviderAdapter`` with no network: answers through the heuristics above."""

    name = "offline"

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        if request.task in _HANDLERS and request.payload:
            result = answer(request.task, request.payload)
        else:
            _, result = answer_prompt(request.system, request.prompt)
        text = json.dumps(result, ensure_ascii=False)
        return Completion(
            provider=self.name,
            model=model or "heuristic-v1",
            text=text,
            request_id=None,
            input_tokens=limits.estimate_prompt_tokens(request.system, request.prompt),
            output_tokens=estimate_tokens(text),
            # the offline engine never cuts its answer: it is the chain's last resort
            max_tokens=request.max_tokens,
        )

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "OfflineAdapter()"
