"""Hide secrets (passwords in URLs, Slack file tokens, API tokens) before anything is shown or stored."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:t|token|access_token|auth|key|sig|signature|X-Amz-Signature)=)[^&#\s\"']+", re.I
)
_SLACK_TOKEN = re.compile(r"\bxox[abeprs]-[A-Za-z0-9-]+")


def redact(text: str) -> str:
    """Return `text` with URL passwords, secret query parameters and Slack tokens replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)
    return _SLACK_TOKEN.sub("xox*-***", text)
