"""The mapping step into a Mattermost package: merged users keep their accounts (a line only for
single-sign-on users, a members script for the others), names the server holds stay theirs, renames
and filters follow, and Mattermost's own validator accepts the package."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatmigrate import pipeline
from chatmigrate.targets import target_for
from tests.targets.helpers import unzip_lines

from . import synth

SERVER_USERS = [  # as `mmctl user list --all --json` prints them
    {"id": "u1annsmith00000000000000aa", "username": "ann.smith", "email": "ann@old.example",
     "auth_service": "ldap", "auth_data": "asmith", "roles": "system_user system_admin", "locale": "de",
     "first_name": "Ann", "last_name": "Smith"},
    {"id": "u2danlee0000000000000000dd", "username": "dan.lee", "email": "dan@x.example", "roles": "system_user"},
    {"id": "u3bob00000000000000000000b", "username": "bob", "email": "bob@other.example", "roles": "system_user"},
]
MAPPING = synth.MERGE_RENAME_EXCLUDE


def migrate(tmp_path: Path, users_file: Path) -> tuple[pipeline.RunResult, Path]:
    out = tmp_path / "out.zip"
    return synth.migrate(f"mattermost-import://{out}?users={users_file}&default_email_domain=example.com", MAPPING), out


def test_package_merges_onto_server_users(tmp_path: Path, mmvalidate: Callable[..., dict[str, Any]]) -> None:
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(SERVER_USERS))
    result, out = migrate(tmp_path, users_file)
    assert result.mapping_plan["users"] == {"merged": 2, "kept": 2}
    lines = unzip_lines(out)
    users = {line["user"]["username"]: line["user"] for line in lines if line["type"] == "user"}
    # The SSO user gets a line that changes nothing of the account: its auth, roles and locale as they are.
    ann = users["ann.smith"]
    assert (ann["auth_service"], ann["auth_data"], ann["roles"], ann["locale"]) == (
        "ldap", "asmith", "system_user system_admin", "de")
    assert "nickname" not in ann and "first_name" not in ann and "password" not in ann
    assert {c["name"] for t in ann["teams"] for c in t["channels"]} >= {"town-square", "dev-ops"}
    # The email user gets none (the importer would reset the password); the script adds the memberships.
    assert "dan.lee" not in users
    script = Path(f"{out}.existing-users.sh").read_text()
    assert "mmctl channel users add acme:town-square dan.lee" in script
    assert "mmctl team users add acme dan.lee" in script
    # The server's `bob` is someone else (another email): the source's bob gets a numbered name.
    assert "bob-2" in users and "bob" not in users and result.sink.counts["CM202"] >= 1
    posts = [line["post"] for line in lines if line["type"] == "post"]
    assert {p["channel"] for p in posts} == {"town-square", "dev-ops", "ops-alerts", "old-project"}
    by_ann = [p for p in posts if p["user"] == "ann.smith"]
    assert by_ann and all("@ann " not in p["message"] for p in posts)
    assert any("@ann.smith" in p["message"] for p in posts) and any("~town-square" in p["message"] for p in posts)
    assert any(p["user"] == "dan.lee" for p in posts)
    found = mmvalidate(out, "-server-users", str(users_file))  # as `mmctl import validate` on the server
    assert found["errors"] == [], found["errors"][:3]
    again, _ = migrate(tmp_path, users_file)
    assert again.rows_written == 0 and again.target_summary["status"].startswith("unchanged")
    # After the import the server also lists the users the package created: matched by email, they are
    # found as themselves (the names the hub gave them), not merged onto, and nothing changes.
    created = [{"id": f"new{i}", "username": name, "email": user.get("email") or f"{name}@example.com"}
               for i, (name, user) in enumerate(users.items()) if name not in ("ann.smith",)]
    users_file.write_text(json.dumps(SERVER_USERS + created))
    third, _ = migrate(tmp_path, users_file)
    assert third.mapping_plan["users"] == {"merged": 2, "kept": 2}
    assert third.rows_written == 0 and third.target_summary["status"].startswith("unchanged")


def test_server_users_from_a_bulk_export_jsonl(tmp_path: Path) -> None:
    users_file = tmp_path / "export.jsonl"
    users_file.write_text("\n".join(json.dumps(line) for line in [
        {"type": "version", "version": 1}, {"type": "team", "team": {"name": "acme"}},
        *({"type": "user", "user": user} for user in SERVER_USERS)]) + "\n")
    result, _ = migrate(tmp_path, users_file)
    assert result.mapping_plan["existing_users"] == 3 and result.mapping_plan["users"]["merged"] == 2


def test_server_users_through_the_api_page_by_page(tmp_path: Path, monkeypatch: Any) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from chatmigrate.targets import _mm_existing

    many = SERVER_USERS + [{"id": f"id{i}", "username": f"user{i}", "email": f"u{i}@x.example"} for i in range(5)]
    seen: list[tuple[str, str | None]] = []

    class Users(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            seen.append((self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != "Bearer s3cret-token":
                self.send_response(401)
                self.end_headers()
                return
            page, per_page = int(query["page"][0]), int(query["per_page"][0])
            body = json.dumps(many[page * per_page:(page + 1) * per_page]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Users)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(_mm_existing, "PER_PAGE", 3)
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        monkeypatch.setenv("MM_ADMIN_TOKEN", "s3cret-token")
        target = target_for(f"mattermost-import://{tmp_path}/out.zip?users={url}&users_token_env=MM_ADMIN_TOKEN")
        found = target.existing_users()
        assert [u.username for u in found] == [u["username"] for u in many]
        assert [path.split("?")[1] for path, _ in seen] == [f"page={p}&per_page=3" for p in range(3)]
        assert found[0].extra == {"auth_service": "ldap", "auth_data": "asmith", "roles": "system_user system_admin",
                                  "locale": "de"}
        monkeypatch.setenv("MM_ADMIN_TOKEN", "wrong-token")
        refused = target_for(f"mattermost-import://{tmp_path}/out.zip?users={url}&users_token_env=MM_ADMIN_TOKEN")
        import pytest

        from chatmigrate.errors import UsageError

        with pytest.raises(UsageError, match="refused the token") as error:
            refused.existing_users()
        assert "wrong-token" not in str(error.value)
    finally:
        server.shutdown()
