"""Deterministic record ids: the same source data always gets the same id, in every form and run."""

from __future__ import annotations

import hashlib
import uuid

# Fixed forever: changing it would change every id and break idempotent re-runs of existing targets.
CHATMIGRATE_NAMESPACE = uuid.UUID("6f2b7c3e-9a51-5d1e-8f4a-3c0b2d7e1a90")
_NAMESPACE_HASH = hashlib.sha1(CHATMIGRATE_NAMESPACE.bytes)


def record_id(source: str, scope: str, kind: str, native_key: str) -> str:
    """uuid5 of `source|scope|kind|native_key`, as its 36-character text form.

    Computed as RFC 4122 §4.3 does (SHA-1 of namespace + name, version and variant bits set), without
    building uuid.UUID objects: this runs once per record and reference, millions of times a run.
    tests/test_ids.py proves it equals uuid.uuid5.

    A key holding a lone surrogate (an invalid `\\ud800` escape in the export) has no UTF-8 form; it is
    encoded with "surrogatepass", which is deterministic and leaves every valid key's bytes (and so
    every existing id) unchanged, instead of aborting the run.
    """
    digest = _NAMESPACE_HASH.copy()
    digest.update(f"{source}|{scope}|{kind}|{native_key}".encode("utf-8", "surrogatepass"))
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
