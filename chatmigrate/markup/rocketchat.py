"""Rocket.Chat message markup → the canonical Markdown (DESIGN §2). Pure functions, no I/O.

Rocket.Chat's dialect differs from the canonical Markdown in a few places:
- `*bold*` is bold (canonical `**bold**`), `~strike~` is strikethrough (canonical `~~strike~~`);
  `_italic_`, `**bold**`, `~~strike~~`, headings, quotes and lists are already canonical;
- `#channel` links a channel (canonical `~channel`). Only names the server resolved (the message's
  `channels` list) are converted when that list is known, so "issue #12" stays as written;
- `<url|label>` is the older link form (canonical `[label](url)`);
- `@user`, `@all` and `@here` are already canonical and stay as they are.
Code spans, fenced code blocks, link targets and bare URLs are copied untouched: an underscore or an
asterisk in a URL or in code is not markup.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# Spans that are never rewritten, in the order they are recognised.
_PROTECTED = re.compile(
    r"(?P<fence>```.*?(?:```|\Z))"                  # fenced code block (to the end if unclosed)
    r"|(?P<code>`[^`\n]+`)"                          # inline code
    r"|(?P<link>(?P<bang>!?)\[(?P<label>[^\]\n]*)\](?P<target>\([^)\s]+(?:\s+\"[^\"]*\")?\)))"  # [label](url)
    r"|(?P<angle><(?P<aurl>[a-zA-Z][a-zA-Z0-9+.\-]*://[^|>\s]+)\|(?P<alabel>[^>\n]*)>)"  # <url|label>
    r"|(?P<url>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s<>]+)",  # bare URL
    re.DOTALL,
)
_BOLD = re.compile(r"(?<![\w*\\])\*(?![\s*])([^*\n]*?[^\s*\\])\*(?![\w*])")
_STRIKE = re.compile(r"(?<![\w~\\])~(?![\s~])([^~\n]*?[^\s~\\])~(?![\w~])")
# Every rewrite needs one of these characters; text without them is returned untouched.
_MAYBE_MARKUP = re.compile(r"[*~#<]")
# A channel name as Rocket.Chat allows it (letters in any script, digits, `_`, `-`, `.`); the `#` must
# start a word, so URL fragments (`page#top`) and headings (`# Title`) are not channel links.
_CHANNEL = re.compile(r"(?<![\w/#&~\\])#([^\W][\w.\-]*)")


def to_markdown(text: str, channels: Collection[str] | None = None) -> tuple[str, bool]:
    """Convert Rocket.Chat markup to canonical Markdown; return (markdown, changed).

    `channels`: the channel names the message links (its `channels[].name`); when given, only those
    `#name` become `~name`; when None every `#name` that starts a word does.
    """
    if not text or not _MAYBE_MARKUP.search(text):
        return text, False  # the common case: nothing to rewrite
    if "`" not in text and "[" not in text and "<" not in text and "://" not in text:
        result = _plain(text, channels)  # nothing to protect: one pass over the whole text
        return result, result != text
    parts: list[str] = []
    last = 0
    for match in _PROTECTED.finditer(text):
        parts.append(_plain(text[last:match.start()], channels))
        if match["angle"]:
            label = _plain(match["alabel"], channels) or match["aurl"]
            parts.append(f"[{label}]({match['aurl']})")
        elif match["link"]:
            # The label is text (it may hold emphasis); the target is copied as it is.
            parts.append(f"{match['bang']}[{_plain(match['label'], channels)}]{match['target']}")
        else:
            parts.append(match.group(0))
        last = match.end()
    parts.append(_plain(text[last:], channels))
    result = "".join(parts)
    return result, result != text


def _plain(segment: str, channels: Collection[str] | None) -> str:
    """Rewrite emphasis and channel links in text that holds no code and no URL."""
    if not segment:
        return segment
    # Strikethrough before channel links: the canonical channel sigil is `~` too.
    if "~" in segment:
        segment = _STRIKE.sub(r"~~\1~~", segment)
    if "*" in segment:
        segment = _BOLD.sub(r"**\1**", segment)
    if "#" not in segment:
        return segment

    def channel(match: re.Match[str]) -> str:
        name = match.group(1).rstrip(".-")
        tail = match.group(1)[len(name):]
        if channels is not None and name not in channels:
            return match.group(0)
        return f"~{name}{tail}"

    return _CHANNEL.sub(channel, segment)
