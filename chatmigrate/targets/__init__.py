"""Targets: where a run writes, found by the scheme of the `--to` URL (contract in contract.py).

Built-in and third-party targets register the same way, in the `chatmigrate.targets` entry-point
group: the entry's name is a URL scheme (`sqlite`, `postgresql`, `mysql`, `mariadb`,
`mattermost-import`) and its value a factory `f(url, *, prefix, options) -> Target`. A scheme with a
driver suffix (`postgresql+psycopg`) is looked up whole first, then by the part before the `+`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from chatmigrate.errors import UsageError
from chatmigrate.redact import redact
from chatmigrate.targets.contract import Capabilities, LoadStats, RunInfo, Target

GROUP = "chatmigrate.targets"
DEFAULT_TARGET = "sqlite:///chatmigrate.db"
TARGET_ENV = "CHATMIGRATE_TARGET_URL"

__all__ = ["DEFAULT_TARGET", "GROUP", "TARGET_ENV", "Capabilities", "LoadStats", "RunInfo", "Target",
           "registered", "scheme_of", "target_for"]

Factory = Callable[..., Target]

# The built-ins, for a checkout used without `pip install -e .` (entry points come from the install).
_BUILTIN = {
    "sqlite": "chatmigrate.loaders:sql_target",
    "postgresql": "chatmigrate.loaders:sql_target",
    "mysql": "chatmigrate.loaders:sql_target",
    "mariadb": "chatmigrate.loaders:sql_target",
    "mattermost-import": "chatmigrate.targets.mattermost_import:MattermostImport.from_url",
    "rocketchat": "chatmigrate.targets.rocketchat:RocketChat.from_url",
    "lanying": "chatmigrate.targets.lanying:Lanying.from_url",
}


def registered() -> dict[str, str]:
    """Every known target scheme → the `module:attribute` of its factory."""
    found = dict(_BUILTIN)
    found.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return found


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition(":")
    if not sep or not scheme or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789+-." for c in scheme.lower()):
        raise UsageError(f"--to {redact(url)!r} is not a target URL (e.g. sqlite:///chat.db, "
                         "postgresql+psycopg://user@host/db, mattermost-import:///srv/import/out.zip)")
    return scheme.lower()


def _factory(spec: str) -> Factory:
    module_name, _, attribute = spec.partition(":")
    obj: Any = __import__(module_name, fromlist=["_"])
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def target_for(url: str, *, prefix: str = "cm_", options: Mapping[str, str] | None = None) -> Target:
    """The target for `url`, chosen by its scheme; a usage error naming the known schemes otherwise."""
    scheme = scheme_of(url)
    known = registered()
    spec = known.get(scheme) or known.get(scheme.split("+", 1)[0])
    if spec is None:
        names = ", ".join(sorted(known))
        raise UsageError(f"--to: no target for the scheme {scheme!r}; known: {names}")
    return _factory(spec)(url, prefix=prefix, options=dict(options or {}))


def resolve_target_url(cli_value: str | None) -> str:
    """The target: `--to` if given, else $CHATMIGRATE_TARGET_URL (keeps passwords out of shell
    history and `ps`), else the default SQLite file."""
    return cli_value or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
