"""The user and bot lines of a Mattermost package, from the hub's users and memberships (the writer
in targets/_mm_package.py has given every user and channel its Mattermost name first)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from chatmigrate.model import EXISTING_USER_PROP
from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets._mm_lines import AUTHORLESS, _deleted_ms, _line, _props

if TYPE_CHECKING:
    from chatmigrate.targets._mm_package import PackageWriter


class UserLines:
    def __init__(self, writer: PackageWriter) -> None:
        self.w = writer
        self.t, self.options, self.counts = writer.t, writer.options, writer.counts
        # Merged users the server already holds who get no user line: (username, [(team, channel)]).
        self.existing_members: list[tuple[str, list[tuple[str, str]]]] = []

    def write(self, conn: sa.Connection, teams: dict[str, dict[str, Any]], out: IO[bytes]) -> None:
        t, members = self.t["users"], self.t["channel_members"]
        team_channels = {cid for cid, c in self.w.chans.items() if c.kind != "D"}
        memberships = conn.execute(sa.select(members.c.user_id, members.c.channel_id)
                                   .order_by(members.c.user_id, members.c.channel_id))
        pending = next(memberships, None)
        default_team = teams[self.w.default_team(teams)]["name"]
        bots: list[bytes] = []
        owner = self._bot_owner()
        query = sa.select(t.c.id, t.c.username, t.c.email, t.c.display_name, t.c.first_name, t.c.last_name,
                          t.c.is_bot, t.c.is_deleted, t.c.role, t.c.props).order_by(t.c.id)
        for row in conn.execute(query):
            channels: list[str] = []
            while pending is not None and pending.user_id < row.id:
                pending = next(memberships, None)
            while pending is not None and pending.user_id == row.id:
                if pending.channel_id in team_channels:
                    channels.append(pending.channel_id)
                pending = next(memberships, None)
            props = _props(row.props)
            marker = props.get(EXISTING_USER_PROP)
            if isinstance(marker, dict):
                line = self._existing_user_line(row, marker, channels, default_team)
                if line is not None:
                    out.write(line)
                    self.counts.add("user")
                continue
            if row.is_bot and owner:
                bots.append(self._bot_line(row, props, owner))
                continue
            out.write(self._user_line(row, props, channels, default_team))
            self.counts.add("user")
        for line in bots:
            out.write(line)
            self.counts.add("bot")
        if self._has_authorless(conn):
            domain = self.options.default_email_domain or "users.invalid"
            out.write(_line("user", {"username": AUTHORLESS, "email": f"{AUTHORLESS}@{domain}", "nickname": "System",
                                     "roles": "system_user", "delete_at": 1}))
            self.w.users[""] = AUTHORLESS
            self.counts.add("user")

    def _existing_user_line(self, row: Any, marker: dict[str, Any], channels: list[str],
                            default_team: str) -> bytes | None:
        """A user the server already holds (merged onto by `--map`). Mattermost's importer updates a
        user of the same username from the line and, without auth_data, gives them a new random password:
        so a line is written only for single-sign-on users (their auth_service and auth_data, roles and
        locale as the server has them: nothing changes but their memberships); the others get none, and
        their team and channel memberships go into a script of mmctl commands next to the package."""
        extra = marker.get("extra") if isinstance(marker.get("extra"), dict) else {}
        name = self.w.users[row.id]
        memberships = [(self.w.chans[c].team or default_team, self.w.chans[c].name) for c in channels]
        email = marker.get("email") if isinstance(marker.get("email"), str) else None
        if not (extra.get("auth_service") and extra.get("auth_data") and email):
            self.existing_members.append((name, sorted(set(memberships))))
            self.counts.existing_without_line += 1
            return None
        by_team: dict[str, list[dict[str, Any]]] = {}
        for team, channel in sorted(set(memberships)):
            by_team.setdefault(team, []).append({"name": channel, "roles": "channel_user"})
        return _line("user", {
            "username": name, "email": email, "auth_service": extra["auth_service"], "auth_data": extra["auth_data"],
            "roles": extra.get("roles") or "system_user", "locale": extra.get("locale"),
            "teams": [{"name": team, "roles": "team_user", "channels": chans} for team, chans in
                      sorted((by_team or {default_team: []}).items())],
        })

    def members_script(self) -> None:
        """`<package>.existing-users.sh`: mmctl commands that add the merged users who get no user line
        to their teams and channels (run after the import)."""
        path = Path(f"{self.options.out}.existing-users.sh")
        if not self.existing_members:
            path.unlink(missing_ok=True)
            return
        lines = ["#!/bin/sh", "# Users the server already had, merged onto by chatmigrate's --map: added to their",
                 "# teams and channels after `mmctl import process` (their accounts are left as they are).", "set -e"]
        for username, memberships in self.existing_members:
            for team in sorted({team for team, _ in memberships}):
                lines.append(f"mmctl team users add {shlex.quote(team)} {shlex.quote(username)}")
            for team, channel in memberships:
                lines.append(f"mmctl channel users add {shlex.quote(f'{team}:{channel}')} {shlex.quote(username)}")
        data = ("\n".join(lines) + "\n").encode()
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        path.chmod(0o755)

    def _bot_owner(self) -> str | None:
        """The package username of `bot_owner` (given as the source or the Mattermost username), or None:
        Mattermost refuses a bot whose owner is not a user, so bots then stay plain users (and the
        summary says why)."""
        wanted = self.options.bot_owner
        if not wanted:
            return None
        owner = self.w.by_source_name.get(wanted) or (wanted if wanted in set(self.w.users.values()) else None)
        if owner is None:
            self.counts.notes.append(f"bot_owner={wanted!r} is not a user of this package: bots imported as users")
        return owner

    def _has_authorless(self, conn: sa.Connection) -> bool:
        """Is any message without an author (or by one the hub does not hold)?"""
        m, u = self.t["messages"], self.t["users"]
        known = sa.select(u.c.id).where(u.c.id == m.c.user_id).exists()
        query = sa.select(m.c.id).where(sa.or_(m.c.user_id.is_(None), ~known)).limit(1)
        return conn.execute(query).first() is not None

    def _user_line(self, row: Any, props: dict[str, Any], channels: list[str], default_team: str) -> bytes:
        guest = row.role == "guest"
        lonely_guest = guest and not channels  # Mattermost refuses a guest outside every channel (CM212)
        by_team: dict[str, list[dict[str, Any]]] = {}
        for channel_id in channels:
            chan = self.w.chans[channel_id]
            by_team.setdefault(chan.team or default_team, []).append({
                "name": chan.name, "roles": "channel_guest" if guest else "channel_user",
                "msg_count": chan.total, "msg_count_root": chan.roots,
                "last_viewed_at": chan.last_at or None})
        if not by_team and not lonely_guest:
            by_team[default_team] = []
        if lonely_guest:
            guest = False
            self.counts.guests_deactivated += 1
        team_roles = "team_guest" if guest else "team_admin team_user" if row.role == "admin" else "team_user"
        name = self.w.users[row.id]
        email = (row.email or "").strip().lower()
        if not email:
            domain = self.options.default_email_domain or ("bots.invalid" if row.is_bot else "users.invalid")
            email = f"{name}@{domain}"
            self.counts.emails_generated += 1
        system_roles = "system_guest" if guest else "system_admin system_user" if row.role == "admin" else "system_user"
        auth_service, auth_data = props.get("auth_service"), props.get("auth_data")
        if not (isinstance(auth_service, str) and auth_service and isinstance(auth_data, str) and auth_data):
            auth_service = auth_data = None
        return _line("user", {
            "username": name, "email": mm.cut(email, mm.EMAIL_MAX),
            "auth_service": auth_service, "auth_data": auth_data,
            "nickname": mm.cut(row.display_name, mm.NICKNAME_MAX) if row.display_name else None,
            "first_name": mm.cut(row.first_name, mm.NICKNAME_MAX), "last_name": mm.cut(row.last_name, mm.NICKNAME_MAX),
            "position": mm.cut(props.get("title") if isinstance(props.get("title"), str) else None, mm.POSITION_MAX),
            "roles": system_roles, "delete_at": 1 if lonely_guest else _deleted_ms(row, props),
            "teams": [{"name": team, "roles": team_roles, "channels": chans}
                      for team, chans in sorted(by_team.items())],
        })

    def _bot_line(self, row: Any, props: dict[str, Any], owner: str) -> bytes:
        return _line("bot", {"username": self.w.users[row.id], "owner": owner,
                             "display_name": mm.cut(row.display_name, mm.DISPLAY_MAX),
                             "description": mm.cut(props.get("bot_description") if isinstance(
                                 props.get("bot_description"), str) else None, 1024),
                             "delete_at": _deleted_ms(row, props)})
