"""Stable hashes used as ids and cache keys."""

from __future__ import annotations

import hashlib
import json


def stable_hash(*parts, length: int = 16) -> str:
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def seed_from(*parts) -> int:
    """A 31-bit seed derived from the parts (what vLLM and most servers accept)."""
    return int(stable_hash(*parts, length=8), 16) & 0x7FFFFFFF
