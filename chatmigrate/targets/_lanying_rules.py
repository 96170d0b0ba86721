"""蓝莺IM's rules as pure functions: valid usernames, the `transaction_id` of a message part, the
content type of a file, and the `ext` JSON that carries what the API cannot set (research/targets.md §D).

Deterministic: the same canonical record gives the same name, transaction id and ext on every run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson

# UserRegisterRequest.username (swagger api-docs.json): letters, digits, underscore and CJK
# (一-龥), at least one non-digit, not starting with `mta` or `maxim`.
_NAME_CHARS = re.compile(r"[^0-9A-Za-z_\u4e00-\u9fa5]+")
_NAME_OK = re.compile(r"^(?!mta|maxim)[a-zA-Z0-9_\u4e00-\u9fa5]*[a-zA-Z_\u4e00-\u9fa5]+[a-zA-Z0-9_\u4e00-\u9fa5]*$")
NAME_MAX = 64  # no limit is documented; long names are cut here
# MessageRequest.content_type
TEXT, IMAGE, AUDIO, VIDEO, FILE = 0, 1, 2, 3, 4
# GET /file/upload/chat file_type: 100 chat file, 102 picture (101/103/104 voice and video are not used:
# a recording sent as a file keeps its bytes and name).
UPLOAD_FILE, UPLOAD_IMAGE = 100, 102
# MessageRequest.type
TO_USER, TO_GROUP = 1, 2
# The key of chatmigrate's object inside a message's `ext` (other keys belong to the app's clients).
EXT_KEY = "chatmigrate"
EXT_VERSION = 1


def username(raw: str) -> str:
    """A username 蓝莺IM registers for `raw`: accents folded, other characters as `_`, a `u_` prefix
    when the name is all digits or starts with `mta`/`maxim` (reserved), at most 64 characters."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", raw) if not unicodedata.combining(c))
    name = _NAME_CHARS.sub("_", folded).strip("_") or "user"
    if not _NAME_OK.match(name) or name.lower().startswith(("mta", "maxim")):
        name = f"u_{name}"
    return name[:NAME_MAX]


def numbered(name: str, n: int) -> str:
    """The n-th alternative of a taken name (`ann_2`, `ann_3`…), within the length limit."""
    suffix = f"_{n}"
    return name[: NAME_MAX - len(suffix)] + suffix


def transaction_id(message_id: str, part: int) -> int:
    """`transaction_id` (int64) of one part of a message: the first 63 bits of SHA-256 of
    `canonical id|part`, so a repeated request for the same part is recognised by the server."""
    digest = hashlib.sha256(f"{message_id}|{part}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def upload_type(mime: str | None, name: str) -> tuple[int, int]:
    """(file_type of the upload route, content_type of the message) for a file."""
    kind = (mime or "").split("/", 1)[0].lower()
    if kind == "image" or name.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".webp")):
        return UPLOAD_IMAGE, IMAGE
    return UPLOAD_FILE, FILE


def iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str) and value:
        return value
    return None


def ext_json(info: dict[str, Any]) -> str:
    """The `ext` string of a sent message: `{"chatmigrate": {...}}`, keys sorted, empty values left out
    (README: 'The ext JSON')."""
    kept = {k: v for k, v in info.items() if v not in (None, "", [], {}, False)}
    return orjson.dumps({EXT_KEY: {"v": EXT_VERSION, **kept}}, option=orjson.OPT_SORT_KEYS).decode()


def ext_of(raw: Any) -> dict[str, Any] | None:
    """chatmigrate's object inside a message's `ext`, or None (not JSON, or not sent by chatmigrate)."""
    if not isinstance(raw, str) or EXT_KEY not in raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    inner = value.get(EXT_KEY) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else None


def attachment(url: str, name: str, size: int | None, dimensions: tuple[int, int] | None) -> str:
    """MessageRequest.attachment: `{"url", "dName", "fLen"[, "width", "height"]}` as a JSON string."""
    info: dict[str, Any] = {"url": url, "dName": name, "fLen": int(size or 0)}
    if dimensions is not None:
        info["width"], info["height"] = float(dimensions[0]), float(dimensions[1])
    return orjson.dumps(info).decode()


def image_size(path: Any) -> tuple[int, int] | None:
    """Width and height of an image file (clients lay out a picture message with them), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
