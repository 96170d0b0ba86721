"""Hide secrets (passwords in URLs, Slack file tokens, API tokens) before anything is shown or stored,
and make text from an input safe to print (`printable`).

Every credential form the drivers and servers accept is covered:
- a URL's userinfo, `scheme://user:PASSWORD@host`: the password runs to the last `@` before the host,
  so one holding an unencoded `@` (or `/`) is hidden whole, not just up to its first `@`;
- query parameters that carry a credential: `?password=`, `sslpassword`, `passwd`, `pwd`, `passfile`,
  `token`, `t` (Slack file tokens), signatures, keys… (any name holding pass/pwd/secret/token/auth/key/sig);
- libpq's keyword form inside a connection string or a driver message: `password=SECRET`;
- Slack tokens (`xoxb-…`);
- any value handed to `remember` (a target's password, wherever a driver might echo it).
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/\s'\"]*?):(?P<pw>[^\s'\"]*?)"
    # The host that follows holds no further `@`: that makes the `@` matched the last one.
    r"@(?=[^@\s'\"/?#]*(?:[/?#\s'\"]|$))"
)
_SECRET_NAME = r"(?:t|[\w.\-]*(?:pass|pwd|secret|token|auth|key|sig|credential)[\w.\-]*)"
# A value ends at the next parameter, a space or a quote; a colon belongs to it unless a space follows
# (`…?password=***: creating the schema failed` keeps the colon of the message).
_QUERY_SECRET = re.compile(rf"(?P<key>[?&;]{_SECRET_NAME}=)(?:[^&#\s\"':]|:(?![\s\"']|$))+", re.I)
_KEYWORD_SECRET = re.compile(
    r"(?P<key>(?<![\w.\-])(?:password|sslpassword|passwd|pwd)\s*=\s*)(?:'(?:[^'\\]|\\.)*'"
    r"|(?:[^\s&#\"':]|:(?![\s\"']|$))+)", re.I
)
_SLACK_TOKEN = re.compile(r"\bxox[abeprs]-[A-Za-z0-9-]+")
# Remembered values shorter than this are left to the patterns: masking e.g. "pw" or "test" wherever it
# appears would garble every message without hiding anything a reader could not guess.
MIN_REMEMBERED = 6
_remembered: set[str] = set()
# What must not reach a terminal raw: C0/C1 control characters (NUL, ESC sequences, newlines that
# would split a one-line message), lone surrogates (no terminal encoding can write them) and the
# bidirectional overrides that make text display in another order than it reads.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def remember(secret: str | None) -> None:
    """Mask `secret` wherever it appears from now on in this process (e.g. a password a driver may echo in
    a form no pattern recognises, such as one holding a space)."""
    if secret and len(secret) >= MIN_REMEMBERED:
        _remembered.add(secret)


def is_secret_name(name: str) -> bool:
    """Does a query parameter of this name carry a credential (password, sslpassword, token…)?"""
    return re.fullmatch(_SECRET_NAME, name, re.I) is not None


def redact(text: str) -> str:
    """Return `text` with URL passwords, secret query parameters, Slack tokens and remembered secrets
    replaced by ***."""
    for secret in sorted(_remembered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)
    text = _KEYWORD_SECRET.sub(lambda m: f"{m['key']}***", text)
    return _SLACK_TOKEN.sub("xox*-***", text)


def printable(text: str) -> str:
    """`text` with every control character, lone surrogate and bidi override written as an escape
    (`\\x00`, `\\n`, `\\u202e`), so one message stays one line and shows what is really there."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                          else f"\\u{ord(m[0]):04x}"), text)
