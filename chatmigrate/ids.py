"""Deterministic record ids: the same source data always gets the same id, in every form and run."""

from __future__ import annotations

import uuid

# Fixed forever: changing it would change every id and break idempotent re-runs of existing targets.
CHATMIGRATE_NAMESPACE = uuid.UUID("6f2b7c3e-9a51-5d1e-8f4a-3c0b2d7e1a90")


def record_id(source: str, scope: str, kind: str, native_key: str) -> str:
    """uuid5 of `source|scope|kind|native_key`, as its 36-character text form."""
    return str(uuid.uuid5(CHATMIGRATE_NAMESPACE, f"{source}|{scope}|{kind}|{native_key}"))
