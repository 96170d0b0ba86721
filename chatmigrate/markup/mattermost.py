"""Mattermost message text → canonical Markdown (DESIGN §2).

Mattermost already writes Markdown with `@username` mentions and `~channel-name` links, which is the
canonical form, so almost everything is kept verbatim. What changes: Mattermost matches mentions and
channel links case-insensitively while usernames and channel names are stored lowercase (its username
and channel-name rules allow only a-z 0-9 . - _), so `@Ron` and `~Town-Square` are written as
`@ron` and `~town-square`, the names a reader can join on. `@channel`, `@all` and `@here` stay
mentions (lowercased the same way). Nothing inside code blocks, code spans, URLs or e-mail addresses
is touched.
"""

from __future__ import annotations

import re

# Protected regions, matched in one pass so that the earliest wins: fenced code blocks (``` or ~~~,
# to the closing fence or the end of the text), inline code spans, Markdown link targets, autolinks
# and bare URLs (a URL may hold "/@Name" or "~Name" that must stay as typed).
_PROTECTED = re.compile(
    r"(?ms)^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}(?P=fence)[ \t]*$|\Z)"
    r"|(?P<ticks>`+).+?(?P=ticks)"
    r"|\]\([^)\s]*\)"
    r"|<[a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*>"
    r"|\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>]+"
)
# A mention starts at a word boundary that is not part of an e-mail address or a path, and ends where
# the name ends (a name running on into a non-ASCII letter is not a Mattermost name: left as typed).
_MENTION = re.compile(r"(?<![\w@./+-])@([A-Za-z0-9][A-Za-z0-9._-]*)(?!\w)")
# A channel link: one tilde (not the ~~ of strikethrough) followed by a channel name.
_CHANNEL = re.compile(r"(?<![\w~/])~([A-Za-z0-9][A-Za-z0-9_-]*)(?!\w)")


def _normalise_prose(text: str) -> str:
    text = _MENTION.sub(lambda m: "@" + m.group(1).lower(), text)
    return _CHANNEL.sub(lambda m: "~" + m.group(1).lower(), text)


def to_markdown(text: str) -> str:
    """Canonical Markdown for one Mattermost message; returns `text` itself when nothing changes."""
    if not text or ("@" not in text and "~" not in text):
        return text
    out: list[str] = []
    last = 0
    for match in _PROTECTED.finditer(text):
        out.append(_normalise_prose(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_normalise_prose(text[last:]))
    result = "".join(out)
    return text if result == text else result
