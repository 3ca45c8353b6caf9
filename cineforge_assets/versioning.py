"""Versions that decide whether an asset must be materialized again (pure, no Dagster).

Issue 15 item 6: no paid call twice for the same input. Every asset carries a Dagster ``code_version``
and every materialization a data version; ``cineforge ingest`` re-runs only what is missing or stale
(``plan_ingest``) and the Dagster UI marks assets "stale: code version changed" after a parser or prompt
change.

**Code versions are computed at import, not kept as constants bumped by hand.** A hand-kept constant is
forgotten exactly when it matters (a prompt edit that nobody thought of as "a version change" leaves old
answers served as current), and a guard test that fails on every edit of the parser would fail the other
engineers' merges all day. So each asset's version is a hash of what shapes its output:

* the parser / payload modules it runs, hashed as their *syntax tree without docstrings*, so comments,
  docstrings and formatting changes cost no re-run, while any change of code does;
* for an AI stage, the exact system prompt and user-prompt frame of its task (instructions and response
  schema), its default output ceiling, and the stage's default model chain.

A chain overridden at run time (resource config) is not part of the version: it is configuration, and a
run's attempts record which model served.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Which modules shape each asset's output (the I/O and Dagster shells are left out on purpose: see above).
_READER_PACKAGE = "cineforge_assets.screenplay.formats"
ASSET_MODULES: Mapping[str, tuple[str, ...]] = {
    "raw_input": (_READER_PACKAGE,),
    "canonical_script": (
        "cineforge_assets.screenplay.fountain",
        "cineforge_assets.screenplay.elements",
        "cineforge_assets.screenplay.batching",  # long prose is normalized in chunks joined back together
    ),
    "scenes": (
        "cineforge_assets.screenplay.scenes",
        "cineforge_assets.screenplay.batching",
        "cineforge_assets.screenplay.payloads",
        "cineforge_assets.screenplay.plausibility",
    ),
    "project_config": ("cineforge_assets.screenplay.project", "cineforge_assets.screenplay.payloads"),
    "veo3_broll": ("cineforge_assets.broll.scenes",),
}
# asset -> (stage, task) of the AI call it makes.
ASSET_TASKS: Mapping[str, tuple[str, str]] = {
    "canonical_script": ("normalize", "normalize"),
    "scenes": ("extract_scenes", "enrich_scenes"),
    "project_config": ("project_config", "project_insights"),
}
_MINIMAL_PAYLOADS: Mapping[str, dict[str, object]] = {
    "normalize": {"text": ""},
    "enrich_scenes": {"scenes": []},
    "project_insights": {},
}


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(source: str) -> str:
    """SHA-256 of ``source``'s syntax tree without docstrings: blind to comments and layout."""
    tree = _without_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _module_files(name: str) -> list[Path]:
    module = importlib.import_module(name)
    file = Path(str(module.__file__))
    if file.name == "__init__.py":  # a package: every module in it
        return sorted(file.parent.glob("*.py"))
    return [file]


def task_fingerprint(stage: str, task: str) -> str:
    """The prompt text, output ceiling and default chain that a stage's call is made of."""
    from resources.providers.prompts import build_request
    from resources.resilience.chain import DEFAULT_CHAINS

    request = build_request(task, dict(_MINIMAL_PAYLOADS[task]), stage=stage)
    shape = {
        "system": request.system,
        "prompt_frame": request.prompt,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "chain": list(DEFAULT_CHAINS.get(stage, ())),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def code_version(asset: str) -> str:
    """The asset's code version: 16 hex digits over its modules' fingerprints and its task's."""
    parts = [
        f"{path.name}:{source_fingerprint(path.read_text(encoding='utf-8'))}"
        for module in ASSET_MODULES[asset]
        for path in _module_files(module)
    ]
    if asset in ASSET_TASKS:
        parts.append(f"task:{task_fingerprint(*ASSET_TASKS[asset])}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def content_version(*parts: str) -> str:
    """A data version from an artifact's content (the same content gives the same version)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


# ------------------------------------------------------------------ what an ingest must re-run


@dataclass(frozen=True)
class RecordedMaterialization:
    """What Dagster recorded on an asset partition's latest materialization (its version tags)."""

    code_version: str | None
    data_version: str | None
    storage_id: int = 0
    # upstream -> the storage id of the upstream materialization this one read (Dagster's input event
    # pointers: exact, where its input data versions of a partitioned upstream are a hash over partitions).
    inputs_read: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestPlan:
    """The assets to materialize (in graph order) and why each is stale; empty: all up to date."""

    to_run: tuple[str, ...]
    reasons: Mapping[str, str]

    @property
    def up_to_date(self) -> bool:
        return not self.to_run


def plan_ingest(
    assets: Sequence[str],
    upstreams: Mapping[str, Iterable[str]],
    current_code_versions: Mapping[str, str],
    recorded: Mapping[str, RecordedMaterialization | None],
    source_data_version: str,
    source_asset: str = "raw_input",
) -> IngestPlan:
    """Which of ``assets`` (in topological order) an ingest of a file whose content hashes to
    ``source_data_version`` must materialize, and why.

    An asset re-runs when it was never materialized for the partition, its code version changed, its
    recorded inputs are not its upstreams' latest data versions (an earlier run stopped between them),
    the source file changed (``source_asset`` only), or an upstream re-runs (its new output is unknown until
    it has run, so what reads it runs too).
    """
    reasons: dict[str, str] = {}
    for asset in assets:
        last = recorded.get(asset)
        ups = list(upstreams.get(asset, ()))
        rerun_ups = [u for u in ups if u in reasons]
        if last is None:
            reasons[asset] = "never materialized for this file"
        elif last.code_version != current_code_versions.get(asset):
            reasons[asset] = f"code version changed ({last.code_version} -> {current_code_versions.get(asset)})"
        elif asset == source_asset and last.data_version != source_data_version:
            reasons[asset] = "the file's content changed"
        elif rerun_ups:
            reasons[asset] = f"upstream {', '.join(rerun_ups)} re-runs"
        else:
            moved = [u for u in ups if (up := recorded.get(u)) is not None and last.inputs_read.get(u) != up.storage_id]
            if moved:
                reasons[asset] = f"upstream {', '.join(moved)} changed since it ran"
    return IngestPlan(to_run=tuple(a for a in assets if a in reasons), reasons=reasons)
