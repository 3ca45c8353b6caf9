"""Atomic, human-readable artifact storage for every asset.

Dagster's built-in ``FilesystemIOManager`` pickles values, which an operator cannot read and which are
written in place. Artifacts here are JSON / Fountain / Parquet files a person can open, written
atomically (``resources.atomic_files``): a failed or killed step never leaves a torn artifact and never
replaces a good one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import BaseModel

from resources.atomic_files import atomic_write_bytes
from resources.data_root import artifacts_dir


def artifact_path(root: Path, asset: str, partition: str | None, ext: str) -> Path:
    return root / asset / f"{partition or 'default'}.{ext}"


class ArtifactIOManager(ConfigurableIOManager):
    """Stores pydantic models as ``.json``, DataFrames as ``.parquet``, text as ``.txt``.

    A model exposing ``fountain`` also gets a ``.fountain`` sidecar so the canonical script can be opened
    in any screenwriting tool. ``root`` empty means ``$CINEFORGE_DATA/artifacts``.
    """

    root: str = ""

    def _root(self) -> Path:
        if self.root:
            return Path(self.root).expanduser().resolve()
        return artifacts_dir()

    def _key(self, context: OutputContext | InputContext) -> tuple[str, str | None]:
        asset = "/".join(context.asset_key.path)
        partition = context.partition_key if context.has_partition_key else None
        return asset, partition

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        asset, partition = self._key(context)
        root = self._root()
        if isinstance(obj, pd.DataFrame):
            buffer = io.BytesIO()
            obj.to_parquet(buffer, index=False)
            path = artifact_path(root, asset, partition, "parquet")
            atomic_write_bytes(path, buffer.getvalue())
        elif isinstance(obj, BaseModel):
            fountain = getattr(obj, "fountain", None)
            if isinstance(fountain, str):
                atomic_write_bytes(artifact_path(root, asset, partition, "fountain"), fountain.encode())
            path = artifact_path(root, asset, partition, "json")
            atomic_write_bytes(path, obj.model_dump_json(indent=2).encode())
        elif isinstance(obj, (dict, list)):
            path = artifact_path(root, asset, partition, "json")
            atomic_write_bytes(path, json.dumps(obj, indent=2, default=str).encode())
        elif isinstance(obj, str):
            path = artifact_path(root, asset, partition, "txt")
            atomic_write_bytes(path, obj.encode())
        else:
            raise TypeError(f"ArtifactIOManager cannot store {type(obj).__name__} for asset {asset}")
        context.add_output_metadata({"artifact_path": str(path)})

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        asset, partition = self._key(context)
        root = self._root()
        loader = _loader_for(context.dagster_type.typing_type if context.dagster_type else None)
        for ext in ("parquet", "json", "txt"):
            path = artifact_path(root, asset, partition, ext)
            if path.exists():
                return loader(path, ext)
        where = upstream.asset_key.to_user_string() if upstream and upstream.asset_key else asset
        raise FileNotFoundError(
            f"No artifact for {where} partition {partition!r} under {root}; materialize {where} first"
        )


def _loader_for(typing_type: Any) -> Callable[[Path, str], Any]:
    def load(path: Path, ext: str) -> Any:
        if ext == "parquet":
            return pd.read_parquet(path)
        text = path.read_text(encoding="utf-8")
        if ext == "txt":
            return text
        if isinstance(typing_type, type) and issubclass(typing_type, BaseModel):
            return typing_type.model_validate_json(text)
        return json.loads(text)

    return load
