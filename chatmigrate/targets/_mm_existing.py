"""The users a Mattermost server already holds, for a mapping that merges onto them (`--map`): read
from a file (`mmctl user list --all --json > users.json`, or a Mattermost bulk export's JSONL) or from
the server's API (`GET /api/v4/users`, a personal access token from the environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from chatmigrate.errors import UsageError
from chatmigrate.ids import record_id
from chatmigrate.redact import redact
from chatmigrate.targets.contract import ExistingUser

PER_PAGE = 200
# What a merged user's line needs so that importing it changes nothing of the existing account.
_KEPT = ("auth_service", "auth_data", "roles", "locale")


def existing_user(raw: dict[str, Any]) -> ExistingUser | None:
    """One Mattermost user object (API or mmctl JSON, or a bulk-import `user` payload) as an ExistingUser."""
    username = raw.get("username")
    if not isinstance(username, str) or not username:
        return None
    email = raw.get("email") if isinstance(raw.get("email"), str) else None
    names = " ".join(str(raw[k]) for k in ("first_name", "last_name") if isinstance(raw.get(k), str) and raw[k])
    display = raw.get("nickname") if isinstance(raw.get("nickname"), str) and raw.get("nickname") else names or None
    extra = {k: raw[k] for k in _KEPT if isinstance(raw.get(k), str) and raw[k]}
    return ExistingUser(id=record_id("mattermost", "existing", "user", username.lower()), username=username,
                        email=email, target_id=raw.get("id") if isinstance(raw.get("id"), str) else None,
                        display_name=display, extra=extra)


def read_users_file(path: Path) -> list[ExistingUser]:
    """A JSON array of users, or JSON lines of users or of bulk-import lines (`{"type": "user", ...}`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--to …?users={path}: cannot read it ({exc.strerror}); check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"--to …?users={path}: not UTF-8 JSON; give the output of `mmctl user list --all "
                         "--json`") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); give the output of `mmctl user "
                             "list --all --json`") from None
        return _users(items, path)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg}); give one user object per line") from None
        if isinstance(item, dict) and item.get("type") == "user":
            item = item.get("user")
        elif isinstance(item, dict) and "type" in item:
            continue  # another line of a bulk export (team, channel, post…)
        found.extend(_users([item], path, number))
    return found


def _users(items: Any, path: Path, line: int | None = None) -> list[ExistingUser]:
    if not isinstance(items, list):
        raise UsageError(f"{path}: expected a JSON array of users (`mmctl user list --all --json`)")
    found = []
    for item in items:
        user = existing_user(item) if isinstance(item, dict) else None
        if user is None:
            where = f"{path}:{line}" if line else str(path)
            raise UsageError(f"{where}: a user without a username; give the output of `mmctl user list --all --json`")
        found.append(user)
    return found


def fetch_users(base_url: str, token: str, timeout: float = 30.0) -> Iterator[ExistingUser]:
    """Every user of the server, page by page (`/api/v4/users?page=N&per_page=200`)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    page = 0
    while True:
        url = f"{base_url.rstrip('/')}/api/v4/users"
        try:
            answer = session.get(url, params={"page": page, "per_page": PER_PAGE}, timeout=timeout)
        except requests.RequestException as exc:
            raise UsageError(f"cannot read the existing users from {redact(url)}: {type(exc).__name__}") from None
        if answer.status_code in (401, 403):
            raise UsageError(f"{redact(url)} refused the token ({answer.status_code}): give a system admin's personal "
                             "access token in the variable named by users_token_env")
        if answer.status_code != 200:
            raise UsageError(f"{redact(url)} answered {answer.status_code} while listing users; check the URL")
        items = answer.json()
        for item in items if isinstance(items, list) else ():
            user = existing_user(item) if isinstance(item, dict) else None
            if user is not None:
                yield user
        if not isinstance(items, list) or len(items) < PER_PAGE:
            return
        page += 1
