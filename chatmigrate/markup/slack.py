"""Slack mrkdwn → canonical Markdown (DESIGN §2): `@username`, `~channel`, `[label](url)`, `**bold**`.

Order matters (Slack's own docs): angle-bracket tokens are parsed first, entities (`&amp; &lt; &gt;`)
are unescaped after, and nothing inside code spans or blocks is touched except those entities.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"<([^<>\n]+)>")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
# Placeholders for converted tokens while emphasis is rewritten: private-use characters that
# Slack never sends, so a token's label (which may hold * or ~) is not mistaken for emphasis.
_HOLD_OPEN, _HOLD_CLOSE = "\ue000", "\ue001"
_HELD = re.compile(f"{_HOLD_OPEN}(\\d+){_HOLD_CLOSE}")
# Text without any of these characters is already canonical (the common short chat line).
_NEEDS_WORK = re.compile(r"[<&*~`]")
_BROADCASTS = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def unescape(text: str) -> str:
    if "&" not in text:
        return text
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _token(body: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    target, _, label = body.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        user_id = target[1:]
        return "@" + (users.get(user_id) or label.lstrip("@") or user_id)
    if target.startswith("#"):
        channel_id = target[1:]
        return "~" + (channels.get(channel_id) or label.lstrip("#") or channel_id)
    if target.startswith("!"):
        command = target[1:]
        if command in _BROADCASTS:
            return _BROADCASTS[command]
        if command.startswith("subteam^"):
            return label if label.startswith("@") else "@" + (label or command.split("^", 1)[1])
        # <!date^…|fallback> and any future command: the fallback text is what people saw.
        return label or command
    url = unescape(target)
    if label and label != url:
        return f"[{label}]({url})"
    if url.startswith("mailto:"):
        return url[len("mailto:"):]
    return url


def _convert_prose(text: str) -> str:
    # The `in` tests are C-speed scans that spare most lines the regular expressions.
    text = unescape(text)
    if "*" in text:
        text = _BOLD.sub(r"**\1**", text)
    return _STRIKE.sub(r"~~\1~~", text) if "~" in text else text


def _convert_code(code: str) -> str:
    if code.startswith("```"):
        body = unescape(code[3:-3])
        # Slack allows ```code``` inline; Markdown needs the fence on its own lines.
        return f"```\n{body.strip(chr(10))}\n```"
    return unescape(code)


def to_markdown(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Convert one message text; `users` maps Slack user ids to usernames, `channels` ids to names.

    A raw `<…>` is always a token, even inside code (Slack escapes a literal `<` as `&lt;`; real
    exports show mentions inside backticks as user elements), so tokens convert everywhere and only
    emphasis stops at code.
    """
    if not _NEEDS_WORK.search(text):
        return text
    held: list[str] = []

    def hold(match: re.Match[str]) -> str:
        held.append(_token(match.group(1), users, channels))
        return f"{_HOLD_OPEN}{len(held) - 1}{_HOLD_CLOSE}"

    if "<" in text:
        text = _TOKEN.sub(hold, text)
    if "`" in text:
        out: list[str] = []
        last = 0
        for match in _CODE.finditer(text):
            out.append(_convert_prose(text[last:match.start()]))
            out.append(_convert_code(match.group(0)))
            last = match.end()
        out.append(_convert_prose(text[last:]))
        converted = "".join(out)
    else:
        converted = _convert_prose(text)
    return _HELD.sub(lambda m: held[int(m.group(1))], converted) if held else converted
