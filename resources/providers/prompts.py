"""The one place for prompts and response schemas.

Every AI call in the pipeline is one of a few *tasks*. For each task this module owns:

* the payload it takes (``NormalizePayload``, ``EnrichScenesPayload``, ``ProjectInsightsPayload``),
* the response it must come back with (``NormalizeResult``, ``EnrichScenesResult``,
  ``ProjectInsightsResult``), which is also the JSON schema shown to the model,
* ``build_request`` (task + payload -> provider-neutral ``CompletionRequest``) and
* ``parse_response`` (model text -> validated response model, or ``ValueError``).

The system prompt carries a machine-readable ``<task>NAME</task>`` marker and the user prompt carries
the payload as JSON inside ``<input>...</input>``. The offline engine and the loopback simulator use
``extract_task_and_input`` to recover both, so a simulated provider answers exactly what a real model
was asked. ``<`` is escaped as ``\\u003c`` inside the JSON so screenplay text can never close the tag early.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resources.providers.base import CompletionRequest

TaskName = Literal["normalize", "enrich_scenes", "project_insights"]
TASKS: Final[tuple[str, ...]] = ("normalize", "enrich_scenes", "project_insights")


# ---------------------------------------------------------------- payloads (what we send)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class NormalizePayload(_Payload):
    """Prose or badly formatted screenplay text to turn into Fountain."""

    text: str
    title: str = ""
    source_format: str = ""


class SceneInput(_Payload):
    """One scene as the enrichment task sees it: heading plus its body as Fountain text."""

    scene_number: int
    heading: str = ""
    text: str = ""
    characters: list[str] = Field(default_factory=list)


class EnrichScenesPayload(_Payload):
    title: str = ""
    scenes: list[SceneInput]


class ProjectInsightsPayload(_Payload):
    """Whole-project facts: ``characters`` ordered by prominence, ``excerpt`` a representative slice."""

    title: str = ""
    characters: list[str] = Field(default_factory=list)
    excerpt: str = ""
    scene_count: int = 0
    scene_summaries: list[str] = Field(default_factory=list)


PAYLOAD_MODELS: Final[dict[str, type[_Payload]]] = {
    "normalize": NormalizePayload,
    "enrich_scenes": EnrichScenesPayload,
    "project_insights": ProjectInsightsPayload,
}


# ---------------------------------------------------------------- responses (what we accept)


class NormalizeResult(BaseModel):
    fountain: str = Field(min_length=1)


class SceneEnrichment(BaseModel):
    scene_number: int
    summary: str = Field(min_length=1)
    mood: str = Field(min_length=1)
    visual_description: str = Field(min_length=1)


class EnrichScenesResult(BaseModel):
    scenes: list[SceneEnrichment]


class ProjectInsightsResult(BaseModel):
    genre: str = Field(min_length=1)
    tone: str = Field(min_length=1)
    logline: str = Field(min_length=1)


RESPONSE_MODELS: Final[dict[str, type[BaseModel]]] = {
    "normalize": NormalizeResult,
    "enrich_scenes": EnrichScenesResult,
    "project_insights": ProjectInsightsResult,
}


# ---------------------------------------------------------------- instructions

_INSTRUCTIONS: Final[dict[str, str]] = {
    "normalize": (
        "You are a professional script formatter. Convert the input text into a screenplay in Fountain "
        "syntax. Keep the author's words and order; do not invent story. Start every scene with a scene "
        "heading (INT./EXT. LOCATION - DAY/NIGHT), put character cues in UPPER CASE on their own line "
        "followed by their dialogue, and keep everything else as action. If the input has a title, start "
        "with a Fountain title page (Title: ...)."
    ),
    "enrich_scenes": (
        "You are a script supervisor. For every scene in the input write: a one or two sentence summary "
        "of what happens; the mood in one or two words (e.g. tense, somber, joyful, romantic, mysterious, "
        "comedic, neutral); and a visual description of at most 60 words a cinematographer could use as a "
        "prompt for a short B-roll shot (place, time of day, light, key visual action; no dialogue, no "
        "character names). Return one entry per input scene, with the same scene_number."
    ),
    "project_insights": (
        "You are a development executive. From the input describe the project: its genre (one or two "
        "words), its tone (one or two words) and a one sentence logline naming the protagonist."
    ),
}

REPAIR_INSTRUCTION: Final[str] = (
    "Your previous answer could not be used: {error}. Answer again with ONLY the JSON object that "
    "matches the schema, with no prose and no code fences."
)


def _schema_text(task: str) -> str:
    return json.dumps(RESPONSE_MODELS[task].model_json_schema(), separators=(",", ":"), sort_keys=True)


def system_prompt(task: str) -> str:
    _require_task(task)
    return (
        f"<task>{task}</task>\n"
        f"{_INSTRUCTIONS[task]}\n"
        "Reply with a single JSON object and nothing else. It must validate against this JSON schema:\n"
        f"<schema>{_schema_text(task)}</schema>"
    )


def encode_input(payload: dict[str, Any]) -> str:
    """Payload as JSON that cannot contain ``<`` (so ``</input>`` inside screenplay text stays inert)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")


def user_prompt(task: str, payload: dict[str, Any]) -> str:
    return f"Task: {task}\n<input>{encode_input(payload)}</input>"


def _require_task(task: str) -> None:
    if task not in RESPONSE_MODELS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")


def build_request(
    task: str, payload: dict[str, Any], *, stage: str = "", max_tokens: int | None = None
) -> CompletionRequest:
    """The provider-neutral request for ``task``; the payload is validated against the task's model."""
    _require_task(task)
    checked = PAYLOAD_MODELS[task].model_validate(payload).model_dump(mode="json")
    default_tokens = {"normalize": 8192, "enrich_scenes": 4096, "project_insights": 1024}[task]
    return CompletionRequest(
        system=system_prompt(task),
        prompt=user_prompt(task, checked),
        max_tokens=max_tokens or default_tokens,
        temperature=0.0,
        json_output=True,
        stage=stage or task,
        task=task,
        payload=checked,
    )


def build_repair_request(
    original: CompletionRequest, bad_output: str, error: BaseException
) -> CompletionRequest:
    """A second chance after invalid output: same task and input, plus what was wrong and what came back."""
    reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    prompt = (
        f"{original.prompt}\n<previous_answer>{bad_output[:4000].replace('<', '&lt;')}</previous_answer>\n"
        + REPAIR_INSTRUCTION.format(error=reason)
    )
    return original.model_copy(update={"prompt": prompt})


# ---------------------------------------------------------------- parsing

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def strip_fences(text: str) -> str:
    """Remove a surrounding ```json ... ``` fence, which models add despite being told not to."""
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text.strip()


def _first_json_object(text: str) -> Any:
    """Parse ``text`` as JSON; failing that, the first ``{...}`` span (models sometimes add a preamble)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise
        decoded, _ = json.JSONDecoder().raw_decode(text[start:])
        return decoded


def parse_response(task: str, text: str, *, payload: dict[str, Any] | None = None) -> BaseModel:
    """Validate model output for ``task``.

    Raises ``ValueError`` (``json.JSONDecodeError`` and pydantic's ``ValidationError`` are both
    subclasses) when the output is unusable, so the caller can repair once and then give up with
    ``InvalidModelOutputError``. With ``payload`` given, ``enrich_scenes`` must also cover exactly
    the scenes that were asked for, each with words in every field.
    """
    _require_task(task)
    data = _first_json_object(strip_fences(text))
    result = RESPONSE_MODELS[task].model_validate(data)
    if payload is not None and isinstance(result, EnrichScenesResult):
        _check_scene_coverage(result, payload)
    return result


def _check_scene_coverage(result: EnrichScenesResult, payload: dict[str, Any]) -> None:
    asked = sorted(int(scene["scene_number"]) for scene in payload.get("scenes", []))
    answered = sorted(scene.scene_number for scene in result.scenes)
    if asked != answered:
        raise ValueError(f"enrich_scenes answered scenes {answered} but was asked for {asked}")
    blank = [
        scene.scene_number
        for scene in result.scenes
        if not (scene.summary.strip() and scene.mood.strip() and scene.visual_description.strip())
    ]
    if blank:  # whitespace passes min_length; a scene without words has no enrichment
        raise ValueError(f"enrich_scenes left a blank summary, mood or visual description for scenes {blank}")


# ---------------------------------------------------------------- marker extraction

_TASK_MARKER = re.compile(r"<task>\s*([A-Za-z0-9_.-]+)\s*</task>")
_INPUT_MARKER = re.compile(r"<input>(.*?)</input>", re.DOTALL)


def extract_task_and_input(*texts: str) -> tuple[str | None, dict[str, Any] | None]:
    """Recover ``(task, payload)`` from prompt texts built by ``build_request``; ``None`` when absent."""
    task: str | None = None
    payload: dict[str, Any] | None = None
    for text in texts:
        if task is None and (m := _TASK_MARKER.search(text)):
            task = m.group(1)
        if payload is None and (m := _INPUT_MARKER.search(text)):
            try:
                decoded = json.loads(m.group(1))
            except json.JSONDecodeError:
                decoded = None
            payload = decoded if isinstance(decoded, dict) else None
    return task, payload


__all__ = [
    "TASKS",
    "TaskName",
    "NormalizePayload",
    "SceneInput",
    "EnrichScenesPayload",
    "ProjectInsightsPayload",
    "NormalizeResult",
    "SceneEnrichment",
    "EnrichScenesResult",
    "ProjectInsightsResult",
    "PAYLOAD_MODELS",
    "RESPONSE_MODELS",
    "ValidationError",
    "build_request",
    "build_repair_request",
    "parse_response",
    "strip_fences",
    "extract_task_and_input",
    "system_prompt",
    "user_prompt",
    "encode_input",
]
