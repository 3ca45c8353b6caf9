"""One dynamic partition per screenplay; the key is derived from the file name (``partition_key_for``).

Keys must keep different sources apart. A plain slug does not: ``脚本.fountain`` and ``台本.fountain``
both lose every letter, and two long names cut to the same prefix collide, so the second file would
silently replace the first one's source and artifacts. The rules:

* the stem (the name without its extension) is transliterated to ASCII with ``anyascii`` (ISC licence,
  tables for every script, kept up to date with Unicode) and slugged: ``Сценарий.pdf`` -> ``stsenariy``;
* when letters were changed or lost on the way (anything outside ASCII, a stem that slugs to nothing,
  a slug cut to fit ``MAX_KEY_LENGTH``) a short hash of the exact stem is appended, so two stems that
  differ give two keys: ``脚本`` -> ``jiaoben-<hash>``, ``-.txt`` -> ``untitled-<hash>``;
* plain ASCII stems keep the readable slug they always had (``Big Fish (v2).pdf`` -> ``big-fish-v2``),
  so re-delivering a script in another format (``ledger.pdf`` then ``ledger.fountain``) updates the
  same partition. Two ASCII stems that differ only in case or punctuation still share a key; the
  source registry (``sources.register_source_version``) refuses the second unless asked to replace.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from pathlib import PurePath
from typing import Protocol

from anyascii import anyascii
from dagster import DynamicPartitionsDefinition

SCREENPLAY_PARTITIONS = "screenplays"
screenplay_partitions = DynamicPartitionsDefinition(name=SCREENPLAY_PARTITIONS)

MAX_KEY_LENGTH = 80
NAME_HASH_LENGTH = 8
EMPTY_SLUG = "untitled"
_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def source_stem(file_name: str) -> str:
    """The part of a file name that identifies the source: the stem, NFC-normalized.

    NFC because macOS hands out decomposed names (``e`` + combining accent) where other systems
    give the composed character: the same name typed on two machines must be one source.
    """
    return unicodedata.normalize("NFC", PurePath(file_name).stem)


def _slug(text: str) -> str:
    return _SLUG_STRIP.sub("-", text.lower()).strip("-")


def _name_hash(stem: str) -> str:
    return hashlib.sha256(stem.encode("utf-8")).hexdigest()[:NAME_HASH_LENGTH]


def partition_key_for(file_name: str) -> str:
    """A safe, stable partition key from a file name (rules in the module docstring)."""
    stem = source_stem(file_name)
    slug = _slug(anyascii(stem))
    lossy = not stem.isascii() or not slug or len(slug) > MAX_KEY_LENGTH
    if not lossy:
        return slug
    suffix = f"-{_name_hash(stem)}"
    readable = (slug or EMPTY_SLUG)[: MAX_KEY_LENGTH - len(suffix)].rstrip("-")
    return readable + suffix


class _DynamicPartitionStore(Protocol):
    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool: ...

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None: ...


def ensure_screenplay_partition(instance: _DynamicPartitionStore, key: str) -> None:
    """Add ``key`` to the screenplays partitions unless it is there. Two ingests of one script started at once
    both see it missing and both insert it: the second insert breaks the storage's unique key, which only means
    the other process won the race, so it is read back instead of failing the ingest."""
    name = SCREENPLAY_PARTITIONS
    if instance.has_dynamic_partition(name, key):
        return
    try:
        instance.add_dynamic_partitions(name, [key])
    except Exception:
        if not instance.has_dynamic_partition(name, key):
            raise
