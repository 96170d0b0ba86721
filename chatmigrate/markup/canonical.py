"""Canonical Markdown (DESIGN §2) as targets and the mapping step read it: `@username` mentions and
`~channel` links, carrying the source's own names, which may hold any letters (`@josé`, `~projekt-ä`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

MENTION = re.compile(r"(?<![\w@.])@(\w[\w.\-]*\w|\w)")
CHANNEL_LINK = re.compile(r"(?<![\w~])~(\w[\w\-]*)")


def rewrite_names(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Mentions (`@old`) and channel links (`~old`) rewritten to new names (maps hold only names that
    change, keyed by the exact source name: `@Ann` and `@ann` may be two people)."""
    if users and "@" in text:
        text = MENTION.sub(lambda m: "@" + users.get(m.group(1), m.group(1)), text)
    if channels and "~" in text:
        text = CHANNEL_LINK.sub(lambda m: "~" + channels.get(m.group(1), m.group(1)), text)
    return text
