"""Finding the data files of the top-level `mappings/` folder (see mappings/README.md)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from chatmigrate.errors import UsageError

_CHECKOUT = Path(__file__).resolve().parent.parent / "mappings"
_INSTALLED = Path(sys.prefix) / "share" / "chatmigrate" / "mappings"


def mapping_path(name: str) -> Path:
    """The path of mappings/NAME: in the checkout (editable installs), else where pip installed it."""
    for folder in (_CHECKOUT, _INSTALLED):
        if (folder / name).is_file():
            return folder / name
    raise UsageError(f"mappings/{name} is missing from this chatmigrate installation; reinstall chatmigrate")


@functools.cache
def name_set(name: str) -> frozenset[str]:
    """A mapping file of one name per line (blank lines and # comments ignored) as a set."""
    lines = mapping_path(name).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))
