"""Deterministic train / valid / test split of drawings.

A drawing's split depends only on its identity: `key_id` when it has one, else a hash of its content (some official
records have no `key_id`). The hash is salted ("split:") because the sealed acceptance set was cut with the unsalted
`sha1(key_id) % 10 == 0`, which would leave an unsalted split of the shared sample lopsided.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

import numpy as np

SALT = "split:"
BUCKETS = 10
TEST_BUCKETS = frozenset({0})  # 10% held out for the final figures
VALID_BUCKETS = frozenset({1})  # 10% for early stopping and fusion weights


class Split(StrEnum):
    TRAIN = "train"
    VALID = "valid"
    TEST = "test"


def drawing_key(key_id: str | None, drawing: object) -> str:
    """The identity a split is computed from: the key_id, else the drawing's integer coordinates as JSON."""
    if key_id is not None:
        return str(key_id)
    points = [np.rint(np.asarray(s)[:, :2]).astype(int).tolist() for s in drawing or []]
    return "content:" + json.dumps(points, separators=(",", ":"))


def bucket_of(key: str) -> int:
    """0..BUCKETS-1 from the salted sha1 of `key`."""
    return int(hashlib.sha1((SALT + key).encode()).hexdigest(), 16) % BUCKETS


def split_of(key_id: str | None, drawing: object = None) -> Split:
    """Split of a drawing by key_id (or by content where it has none)."""
    b = bucket_of(drawing_key(key_id, drawing))
    if b in TEST_BUCKETS:
        return Split.TEST
    if b in VALID_BUCKETS:
        return Split.VALID
    return Split.TRAIN
