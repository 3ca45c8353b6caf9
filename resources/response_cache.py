"""A content-addressed cache of validated model answers, so a resumed or retried run pays only for what is missing.

A stage that splits its work (``enrich_scenes`` batches, ``normalize`` chunks) keeps each part a model
answered here; when one part fails and the step is retried or the run resumed, the parts already answered
are read back instead of paid for again.

Key: SHA-256 of the task, the model chain the call would walk (with the provider mode: simulated answers never
serve a live run), the prompt version (a hash of the task's
system prompt, which carries its instructions and response schema) and the payload's canonical JSON. Any
change to the prompt, the schema, the chain or the input is a different key, so a stale answer is never
served; nothing is ever updated in place. Entries are files ``<root>/<key[:2]>/<key>.json``
written atomically (``resources.atomic_files``), so a crashed writer or two workers answering the same part
leave one whole entry, never a torn one. A file that does not parse is treated
as a miss (and overwritten by the next answer).

A part whose answer did not fit its model (cut at the output ceiling, or a prompt over every window) and was
split in two leaves a **split note** under its own key (``<key>.split``, empty): a resumed run goes straight
to the halves, whose answers are cached under their own keys, instead of paying once more for the call that
gets cut.

Why hand-written: diskcache and joblib.Memory would add a dependency for ~60 lines, and neither knows the
key this cache needs (the prompt version and the chain); the store is plain JSON files an operator can
read or delete (``rm -r $CINEFORGE_DATA/cache/responses``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.atomic_files import atomic_write_bytes

CACHE_FORMAT = 1


def prompt_version(system_prompt: str) -> str:
    """A short hash of a task's system prompt: its instructions and response schema."""
    return hashlib.sha256(system_prompt.encode("utf-8")).hexdigest()[:16]


def cache_key(task: str, chain: Sequence[str], version: str, payload: dict[str, Any]) -> str:
    """The content address of one answer (see the module docstring)."""
    payload_hash = hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    material = json.dumps(
        {"format": CACHE_FORMAT, "task": task, "chain": list(chain), "prompt": version, "payload": payload_hash},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A validated answer as the model gave it (``value``: the response model's JSON) and who gave it."""

    task: str
    provider: str
    model: str
    value: dict[str, Any]


class ResponseCache:
    """Answers under ``root`` by content address (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = json.loads(self._path(key).read_text(encoding="utf-8"))
            return CachedAnswer(
                task=str(raw["task"]), provider=str(raw["provider"]), model=str(raw["model"]), value=dict(raw["value"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is a miss; the next answer replaces it

    def put(self, key: str, answer: CachedAnswer) -> None:
        path = self._path(key)
        body = json.dumps(
            {"task": answer.task, "provider": answer.provider, "model": answer.model, "value": answer.value},
            ensure_ascii=False,
        )
        atomic_write_bytes(path, body.encode("utf-8"))

    def mark_split(self, key: str) -> None:
        """Note that the part under ``key`` was split because its answer did not fit (see the module docstring)."""
        path = self._path(key).with_suffix(".split")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def was_split(self, key: str) -> bool:
        return self._path(key).with_suffix(".split").exists()

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0
