"""Finding the data files of the top-level `mappings/` folder (see mappings/README.md)."""

from __future__ import annotations

import functools
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import orjson

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


@functools.cache
def table(name: str) -> dict[str, Any]:
    """The TOML data file mappings/NAME.toml, checked against its JSON Schema
    (chatmigrate/schemas/mapping-NAME.schema.json): a broken installation fails here, naming the key."""
    path = mapping_path(f"{name}.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); reinstall chatmigrate") from None
    schema = orjson.loads((files("chatmigrate") / "schemas" / f"mapping-{name}.schema.json").read_bytes())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{path}: {key}: {error.message}; reinstall chatmigrate")
    return data
