"""Writing a Mattermost bulk-import package from the hub (see targets/mattermost_import.py).

Order of the JSONL (Mattermost drains its workers whenever the line type changes, so lines are grouped
by type): version, emoji, team, channel, user, bot, post, direct_channel, direct_post. Posts are read
back from the hub in thread order (channel, thread time, root, replies by time), a bounded group at a
time, so memory does not grow with the number of messages.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from tqdm import tqdm

from chatmigrate.mappings import name_set
from chatmigrate.markup.canonical import rewrite_names
from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets._mm_lines import Counts, _Chan, _line, _ms_or_none, _post_props_text, _present, _props, ms
from chatmigrate.targets._mm_times import _assign_times
from chatmigrate.targets._mm_users import UserLines

SYSTEM_EMOJI = mm.SYSTEM_EMOJI_FILE

JSONL_NAME = "mattermost_import.jsonl"
ATTACHMENTS = "bulk-export-attachments"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same content gives the same bytes
_BATCH = 2_000  # messages read back per round of reaction/file look-ups
_IN_CHUNK = 500  # ids per IN (...) list
DELETED_TEXT = "*(message deleted)*"


class PackageWriter:
    def __init__(self, engine: sa.Engine, prefix: str, hub_tables: sa.MetaData, mm_tables: sa.MetaData,
                 options: Any, store: Any, book: mm.NameBook, progress: bool) -> None:
        self.engine, self.prefix, self.options, self.store, self.book = engine, prefix, options, store, book
        self.progress = progress
        self.t = {name.removeprefix(prefix): table for name, table in hub_tables.tables.items()}
        self.t.update({name.removeprefix(prefix): table for name, table in mm_tables.tables.items()})
        self.counts = Counts()
        self.users: dict[str, str] = {}  # user id → Mattermost username
        self.user_rename: dict[str, str] = {}  # old username → new, for mentions and the names file
        self.channel_rename: dict[str, str] = {}
        self.chans: dict[str, _Chan] = {}
        # Source username → Mattermost username (a Mattermost source's `flagged_by` lists usernames).
        self.by_source_name: dict[str, str] = {}
        # (root id, hash) of every thread line that changed, spooled to disk: one per thread, too many
        # to hold at a million messages; applied to cm_mm_posts once the package is in place.
        self.line_hashes: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in write()
        self.changed_lines = 0
        self.user_lines = UserLines(self)

    # -- the whole package ---------------------------------------------------------------------
    def write(self) -> dict[str, Any]:
        try:
            return self._write()
        finally:
            self.line_hashes.close()

    def _write(self) -> dict[str, Any]:
        with self.engine.begin() as conn:
            self._name_unnamed(conn)
            self._save_names(conn)
            _assign_times(conn, self.t)
        with self.engine.connect() as conn:
            teams = self._teams(conn)
            self._load_users(conn)
            self._load_channels(conn, teams)
            number, path = self._package_path(conn)
            workdir = Path(tempfile.mkdtemp(prefix=".chatmigrate-", dir=self.options.out.parent))
            try:
                head = workdir / "head.jsonl"
                with head.open("wb") as out:
                    out.write(b'{"type":"version","version":1}\n')
                    attachments = list(self._emoji(conn, out))
                    self._team_lines(teams, out)
                    self._channel_lines(conn, out)
                    self.user_lines.write(conn, teams, out)
                posts, directs = workdir / "posts.jsonl", workdir / "direct.jsonl"
                with posts.open("wb") as team_out, directs.open("wb") as direct_out:
                    attachments += self._post_lines(conn, team_out, direct_out)
                head_hash = _file_hash(head)
                changed = self._changed(conn, head_hash)
                if not changed:
                    return self._summary(None, number, "unchanged: nothing new since the previous package")
                written = self._zip(workdir, [head, posts, directs], attachments, path)
            finally:
                for leftover in workdir.iterdir():
                    leftover.unlink()
                workdir.rmdir()
        with self.engine.begin() as conn:
            self._record(conn, number, path, written, head_hash)
        self._names_file()
        self.user_lines.members_script()
        return self._summary(path, number, "written" if written else "unchanged: identical to the file there")

    def _changed(self, conn: sa.Connection, head_hash: str) -> bool:
        if not self.options.delta:
            return True
        packages = self.t["mm_packages"]
        last = conn.execute(sa.select(packages.c.head_hash).order_by(packages.c.number.desc()).limit(1)).scalar()
        return last is None or last != head_hash or bool(self.counts.lines.get("post", 0)
                                                         + self.counts.lines.get("direct_post", 0))

    def _package_path(self, conn: sa.Connection) -> tuple[int, Path]:
        packages = self.t["mm_packages"]
        last = conn.execute(sa.select(sa.func.max(packages.c.number))).scalar() or 0
        if not self.options.delta or last == 0:
            return (last + 1 if self.options.delta else 1), self.options.out
        out = self.options.out
        return last + 1, out.with_name(f"{out.stem}-{last + 1:04d}{out.suffix}")

    def _summary(self, path: Path | None, number: int, status: str) -> dict[str, Any]:
        c = self.counts
        lines = [f"mattermost package: {path or self.options.out} ({status})"]
        if path is not None:
            lines.append("  lines: " + ", ".join(f"{k} {v:,}" for k, v in c.lines.items()))
            lines.append(f"  attachments {c.attachments:,} ({c.attachment_bytes:,} bytes); files without bytes "
                         f"left out: {c.files_without_bytes:,}; over max_file_bytes: {len(c.files_over_limit):,}")
            lines += [f"  note: {note}" for note in c.notes]
            if c.existing_without_line:
                lines.append(f"  {c.existing_without_line:,} merged users the server already holds get no user line "
                             f"(it would reset their password): run {self.options.out}.existing-users.sh after "
                             "the import to add them to their channels")
            lines.append(f"  names: {self.options.out}.names.json; then: mmctl import upload {path.name} && "
                         f"mmctl import process <uploaded name>")
        return {"package": str(path) if path else None, "status": status, "number": number,
                "delta": self.options.delta, "lines_by_type": dict(c.lines), "attachments": c.attachments,
                "attachment_bytes": c.attachment_bytes, "files_without_bytes": c.files_without_bytes,
                "files_over_limit": c.files_over_limit[:100], "emails_generated": c.emails_generated,
                "split_posts": c.split_posts, "groups_as_private_channels": c.groups_as_private,
                "direct_left_out": c.direct_left_out, "guests_without_channels_deactivated": c.guests_deactivated,
                "posts_unchanged_left_out": c.skipped_unchanged, "notes": c.notes,
                "existing_users_without_line": c.existing_without_line,
                "names_file": f"{self.options.out}.names.json", "lines": lines}

    # -- names ---------------------------------------------------------------------------------
    def _name_unnamed(self, conn: sa.Connection) -> None:
        """Records that reached the hub without passing the checks (an older run) get names too,
        in id order, so the result does not depend on which run saw them first."""
        users, teams, emoji = self.t["users"], self.t["teams"], self.t["emoji"]
        for namespace, query, valid in (("user", sa.select(users.c.id, users.c.username), mm.username),
                                        ("team", sa.select(teams.c.id, teams.c.name), mm.team_name),
                                        ("emoji", sa.select(emoji.c.id, emoji.c.name), mm.emoji_name)):
            for record_id, name in conn.execute(query.order_by(query.selected_columns[0])):
                if self.book.get(namespace, record_id) is None:
                    self.book.assign(namespace, record_id, name, valid(name))
        channels, members = self.t["channels"], self.t["channel_members"]
        sizes = {channel_id: n for channel_id, n in conn.execute(
            sa.select(members.c.channel_id, sa.func.count()).group_by(members.c.channel_id))}
        for row in conn.execute(sa.select(channels.c.id, channels.c.team_id, channels.c.name, channels.c.kind)
                                .order_by(channels.c.id)):
            if row.kind in ("direct", "group") and sizes.get(row.id, 0) <= mm.MAX_GROUP_MEMBERS:
                continue
            namespace = channel_namespace(row.team_id, self.options.team)
            if self.book.get(namespace, row.id) is None:
                self.book.assign(namespace, row.id, row.name, mm.channel_name(row.name))

    def _save_names(self, conn: sa.Connection) -> None:
        names = self.t["mm_names"]
        existing = {(ns, rid) for ns, rid in conn.execute(sa.select(names.c.namespace, names.c.record_id))}
        rows = [{"namespace": ns, "record_id": rid, "name": name} for (ns, rid), name in self.book.items()
                if (ns, rid) not in existing]
        if rows:
            conn.execute(names.insert(), rows)

    def _names_file(self) -> None:
        """old → new for every name Mattermost needed changed, next to the package."""
        changes: dict[str, dict[str, str]] = {"users": {}, "channels": {}}
        changes["users"] = dict(sorted(self.user_rename.items()))
        changes["channels"] = dict(sorted(self.channel_rename.items()))
        path = Path(f"{self.options.out}.names.json")
        data = orjson.dumps(changes, option=orjson.OPT_INDENT_2)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)

    # -- teams, users, channels ----------------------------------------------------------------
    def _teams(self, conn: sa.Connection) -> dict[str, dict[str, Any]]:
        t = self.t["teams"]
        teams: dict[str, dict[str, Any]] = {}
        for row in conn.execute(sa.select(t.c.id, t.c.name, t.c.display_name, t.c.description).order_by(t.c.id)):
            name = self.book.get("team", row.id) or mm.team_name(row.name)
            teams[row.id] = {"name": name, "display_name": mm.cut(row.display_name or row.name, mm.DISPLAY_MAX),
                             "description": mm.cut(row.description, mm.TEAM_DESCRIPTION_MAX)}
        wanted = self.options.team
        if wanted or not teams:
            # team=NAME puts every channel into that one team (an export with no team gets "migrated").
            name = mm.team_name(wanted or "migrated")
            return {"default": {"name": name, "display_name": wanted or "Migrated", "description": None}}
        return teams

    def default_team(self, teams: dict[str, dict[str, Any]]) -> str:
        return "default" if "default" in teams else next(iter(teams))

    def _load_users(self, conn: sa.Connection) -> None:
        t = self.t["users"]
        for record_id, username in conn.execute(sa.select(t.c.id, t.c.username)):
            name = self.book.get("user", record_id) or mm.username(username)
            self.users[record_id] = name
            self.by_source_name[username] = name
            if name != username:
                self.user_rename[username] = name

    def _load_channels(self, conn: sa.Connection, teams: dict[str, dict[str, Any]]) -> None:
        t, members = self.t["channels"], self.t["channel_members"]
        member_lists: dict[str, list[str]] = {}
        directs = sa.select(t.c.id).where(t.c.kind.in_(("direct", "group")))
        for channel_id, user_id in conn.execute(sa.select(members.c.channel_id, members.c.user_id)
                                                .where(members.c.channel_id.in_(directs))
                                                .order_by(members.c.channel_id, members.c.user_id)):
            if user_id in self.users:
                member_lists.setdefault(channel_id, []).append(self.users[user_id])
        default = self.default_team(teams)
        for row in conn.execute(sa.select(t.c.id, t.c.team_id, t.c.name, t.c.kind).order_by(t.c.id)):
            team_key = row.team_id if row.team_id in teams else default
            people = sorted(set(member_lists.get(row.id, ())))
            if row.kind in ("direct", "group") and len(people) <= mm.MAX_GROUP_MEMBERS:
                self.chans[row.id] = _Chan(row.id, None, None, "D", people)
                continue
            if row.kind in ("direct", "group"):
                self.counts.groups_as_private += 1
            name = self.book.get(channel_namespace(row.team_id, self.options.team), row.id) or mm.channel_name(row.name)
            if name != row.name:
                self.channel_rename[row.name] = name
            self.chans[row.id] = _Chan(row.id, teams[team_key]["name"], name, "O" if row.kind == "public" else "P")
        posts, messages = self.t["mm_posts"], self.t["messages"]
        stats = sa.select(posts.c.channel_id, sa.func.sum(posts.c.parts),
                          sa.func.sum(sa.case((messages.c.thread_root_id.is_(None), 1), else_=0)),
                          sa.func.max(posts.c.last_at)).join(messages, messages.c.id == posts.c.message_id) \
            .group_by(posts.c.channel_id)
        for channel_id, total, roots, last_at in conn.execute(stats):
            chan = self.chans.get(channel_id)
            if chan is not None:
                chan.total, chan.roots, chan.last_at = int(total or 0), int(roots or 0), int(last_at or 0)

    def _team_lines(self, teams: dict[str, dict[str, Any]], out: IO[bytes]) -> None:
        for team in teams.values():
            out.write(_line("team", {"name": team["name"], "display_name": team["display_name"] or team["name"],
                                     "type": "O", "description": team["description"], "allow_open_invite": False}))
            self.counts.add("team")

    def _channel_lines(self, conn: sa.Connection, out: IO[bytes]) -> None:
        t = self.t["channels"]
        query = sa.select(t.c.id, t.c.name, t.c.display_name, t.c.topic, t.c.purpose, t.c.archived_at, t.c.props) \
            .order_by(t.c.id)
        for row in conn.execute(query):
            chan = self.chans[row.id]
            if chan.kind == "D":
                continue
            archived_at = ms(row.archived_at)
            props = _props(row.props)
            if archived_at is None and isinstance(props.get("deleted_at"), str):
                archived_at = _ms_or_none(props["deleted_at"])  # a deleted room: kept, archived
            if archived_at is None and (props.get("is_archived") is True or props.get("archived") is True):
                archived_at = chan.last_at or 1  # archived, time unknown: after its last post
            out.write(_line("channel", {
                "team": chan.team, "name": chan.name, "type": chan.kind,
                "display_name": mm.cut(row.display_name or row.name, mm.DISPLAY_MAX) or chan.name,
                "header": mm.cut(row.topic, mm.HEADER_MAX), "purpose": mm.cut(row.purpose, mm.PURPOSE_MAX),
                "deleted_at": archived_at}))
            self.counts.add("channel")

    def _emoji(self, conn: sa.Connection, out: IO[bytes]) -> Iterator[tuple[str, Path]]:
        t, files = self.t["emoji"], self.t["files"]
        query = sa.select(t.c.id, t.c.name, files.c.sha256, files.c.props) \
            .join(files, files.c.id == t.c.file_id, isouter=True).order_by(t.c.id)
        system = name_set(SYSTEM_EMOJI)
        for record_id, name, sha256, file_props in conn.execute(query):
            if not sha256 or not self.store.has(sha256) or mm.emoji_name(name) in system \
                    or "image_error" in _props(file_props):
                continue
            entry = f"emoji/{record_id}/image"
            out.write(_line("emoji", {"name": self.book.get("emoji", record_id) or mm.emoji_name(name),
                                      "image": entry}))
            self.counts.add("emoji")
            yield f"data/{entry}", self.store.path(sha256)

    # -- posts ---------------------------------------------------------------------------------
    def _post_lines(self, conn: sa.Connection, team_out: IO[bytes], direct_out: IO[bytes]) -> list[tuple[str, Path]]:
        attachments: list[tuple[str, Path]] = []
        direct_lines: list[bytes] = []
        written_direct: set[str] = set()
        total = conn.execute(sa.select(sa.func.count()).select_from(self.t["mm_posts"])).scalar() or 0
        bar = tqdm(total=total, desc="mattermost package", unit=" msg", file=sys.stderr,
                   disable=not self.progress, mininterval=0.5)
        try:
            for group in self._threads(conn):
                bar.update(len(group))
                root = group[0]
                chan = self.chans.get(root["channel_id"])
                if chan is None:
                    continue
                if chan.kind == "D" and chan.id not in written_direct:
                    written_direct.add(chan.id)
                    line = self._direct_channel_line(chan)
                    if line is not None:
                        direct_lines.append(line)
                payload, files = self._thread_payload(group, chan)
                if payload is None:
                    continue
                data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
                line_hash = hashlib.md5(data).hexdigest()
                if line_hash != root["line_hash"]:
                    self.line_hashes.write(f"{root['id']}\t{line_hash}\n".encode())
                    self.changed_lines += 1
                elif self.options.delta:
                    self.counts.skipped_unchanged += len(group)
                    continue
                kind = "direct_post" if chan.kind == "D" else "post"
                (direct_out if chan.kind == "D" else team_out).write(_line(kind, payload))
                self.counts.add(kind)
                attachments.extend(files)
        finally:
            bar.close()
        # direct_channel lines go between the posts and the direct posts: appended by _zip.
        self._direct_channel_lines = direct_lines
        for chan in self.chans.values():
            if chan.kind == "D" and chan.id not in written_direct:
                line = self._direct_channel_line(chan)
                if line is not None:
                    self._direct_channel_lines.append(line)
        return attachments

    def _direct_channel_line(self, chan: _Chan) -> bytes | None:
        members = chan.members or []
        if not members:
            self.counts.direct_left_out += 1
            return None
        if len(members) == 1:
            members = [members[0], members[0]]
        self.counts.add("direct_channel")
        return _line("direct_channel", {"members": members})

    def _threads(self, conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
        """Root + replies groups, in thread order, read in bounded batches with their reactions and files."""
        m, p = self.t["messages"], self.t["mm_posts"]
        rp = p.alias("root_post")
        root_key = sa.case((rp.c.message_id.is_(None), m.c.id), else_=m.c.thread_root_id).label("root_key")
        thread_at = sa.func.coalesce(rp.c.create_at, p.c.create_at).label("thread_at")
        # Times and props as the stored text: parsed here only when present (most rows have neither),
        # which is several times cheaper than the column types' own result processing.
        raw = {name: sa.type_coerce(m.c[name], sa.String).label(name) for name in ("edited_at", "deleted_at", "props")}
        query = (sa.select(m.c.id, m.c.channel_id, m.c.user_id, m.c.kind, m.c.text, raw["edited_at"],
                           raw["deleted_at"], m.c.is_pinned, raw["props"], p.c.create_at, p.c.part_times, p.c.line_hash,
                           root_key, thread_at)
                 .join(p, p.c.message_id == m.c.id).join(rp, rp.c.message_id == m.c.thread_root_id, isouter=True)
                 .order_by(m.c.channel_id, thread_at, root_key, sa.case((root_key == m.c.id, 0), else_=1),
                           p.c.create_at, m.c.id))
        batch: list[dict[str, Any]] = []
        group: list[dict[str, Any]] = []
        groups: list[list[dict[str, Any]]] = []
        for row in conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query):
            record = dict(row._mapping)
            if group and record["root_key"] != group[0]["root_key"]:
                groups.append(group)
                group = []
            group.append(record)
            batch.append(record)
            if len(batch) >= _BATCH and groups:
                self._attach(conn, [r for g in groups for r in g])
                yield from groups
                batch = list(group)
                groups = []
        if group:
            groups.append(group)
        if groups:
            self._attach(conn, [r for g in groups for r in g])
            yield from groups

    def _attach(self, conn: sa.Connection, records: Sequence[dict[str, Any]]) -> None:
        r, f = self.t["reactions"], self.t["files"]
        by_id = {rec["id"]: rec for rec in records}
        for rec in records:
            rec["reactions"], rec["files"] = [], []
        ids = list(by_id)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            for row in conn.execute(sa.select(r.c.message_id, r.c.emoji, r.c.user_id, r.c.created_at)
                                    .where(r.c.message_id.in_(chunk))
                                    .order_by(r.c.message_id, r.c.emoji, r.c.user_id)):
                by_id[row.message_id]["reactions"].append(row)
            kept = self.t["mm_files"]
            query = (sa.select(f.c.message_id, f.c.id, f.c.name,
                               sa.func.coalesce(kept.c.size, f.c.size).label("size"),
                               sa.func.coalesce(kept.c.sha256, f.c.sha256).label("sha256"))
                     .join(kept, kept.c.file_id == f.c.id, isouter=True)
                     .where(f.c.message_id.in_(chunk)).order_by(f.c.message_id, f.c.id))
            for row in conn.execute(query):
                by_id[row.message_id]["files"].append(row)

    def _thread_payload(self, group: list[dict[str, Any]], chan: _Chan) -> tuple[dict[str, Any] | None,
                                                                                 list[tuple[str, Path]]]:
        root, replies = group[0], group[1:]
        files: list[tuple[str, Path]] = []
        posts = self._posts_of(root, files)
        if not posts:
            return None, files
        head = posts[0]
        reply_posts = posts[1:]
        followers: dict[str, int] = {}
        for reply in replies:
            reply_posts.extend(self._posts_of(reply, files))
        for post in reply_posts:
            followers[post["user"]] = max(followers.get(post["user"], 0), post["create_at"])
        if reply_posts:
            followers.setdefault(head["user"], max(p["create_at"] for p in reply_posts))
        payload: dict[str, Any] = dict(head)
        if chan.kind == "D":
            payload["channel_members"] = chan.members if len(chan.members) != 1 else chan.members * 2
            if not chan.members:
                return None, files
        else:
            payload["team"], payload["channel"] = chan.team, chan.name
        if reply_posts:
            payload["replies"] = [_present(reply) for reply in reply_posts]
            payload["thread_followers"] = [{"user": user, "last_viewed": last, "unread_mentions": 0}
                                           for user, last in sorted(followers.items())]
        return _present(payload), files

    def _posts_of(self, rec: dict[str, Any], files: list[tuple[str, Path]]) -> list[dict[str, Any]]:
        """One message → its Mattermost post and continuation posts (long text, many attachments)."""
        user = self.users.get(rec["user_id"] or "") or self.users.get("")
        if user is None:
            return []
        text = rewrite_names(rec["text"] or "", self.user_rename, self.channel_rename)
        if rec["deleted_at"] is not None and not text.strip():
            text = DELETED_TEXT
        parts = mm.split_text(text)
        times = [rec["create_at"], *(orjson.loads(rec["part_times"]) if rec["part_times"] else [])]
        attached = self._attachments(rec["files"], files)
        chunks = [attached[i:i + mm.MAX_FILES_PER_POST] for i in range(0, len(attached), mm.MAX_FILES_PER_POST)]
        count = max(len(parts), len(chunks), 1)
        if count > 1:
            self.counts.split_posts += 1
        while len(times) < count:  # the text grew since the times were assigned: rare, keep order
            times.append(times[-1] + 1)
        props = _post_props_text(rec["props"])
        post_type = "me" if rec["kind"] == "me" else None
        mm_props = _post_props(props)
        out = []
        for i in range(count):
            post: dict[str, Any] = {"user": user, "message": parts[i] if i < len(parts) else "",
                                    "create_at": times[i], "type": post_type}
            if i == 0:
                post["props"] = mm_props
                post["edit_at"] = ms(rec["edited_at"])
                post["is_pinned"] = bool(rec["is_pinned"]) or None
                post["reactions"] = self._reactions(rec["reactions"], times[0])
                flagged = props.get("flagged_by") if isinstance(props.get("flagged_by"), list) else ()
                names = {self.by_source_name[u] for u in flagged if isinstance(u, str) and u in self.by_source_name}
                post["flagged_by"] = sorted(names) or None
            if i < len(chunks):
                post["attachments"] = [{"path": path} for path in chunks[i]]
            out.append(post)
        return out

    def _reactions(self, rows: Sequence[Any], post_at: int) -> list[dict[str, Any]]:
        seen: set[tuple[str, str]] = set()
        out = []
        for row in rows:
            user = self.users.get(row.user_id)
            if user is None:
                continue
            name = mm.reaction_name(row.emoji)
            if (user, name) in seen:
                continue
            seen.add((user, name))
            at = ms(row.created_at)
            out.append({"user": user, "emoji_name": name, "create_at": max(at or post_at, post_at)})
        return out

    def _attachments(self, rows: Sequence[Any], files: list[tuple[str, Path]]) -> list[str]:
        paths = []
        limit = self.options.max_file_bytes
        for row in rows:
            if not row.sha256 or not self.store.has(row.sha256):
                self.counts.files_without_bytes += 1
                continue
            if limit is not None and (row.size or 0) > limit:
                self.counts.files_over_limit.append(f"{row.id} {row.name} ({row.size:,} bytes)")
                continue
            # Mattermost names the imported file after the last part of the path: keep the real name.
            safe = re.sub(r"[/\\\x00-\x1f]+", "_", row.name).strip()[-200:] or "file"
            path = f"{ATTACHMENTS}/{row.id}/{safe}"
            paths.append(path)
            files.append((f"data/{path}", self.store.path(row.sha256)))
            self.counts.attachments += 1
            self.counts.attachment_bytes += row.size or 0
        return paths

    # -- the zip -------------------------------------------------------------------------------
    def _zip(self, workdir: Path, parts: list[Path], attachments: list[tuple[str, Path]], path: Path) -> bool:
        """Write the package next to its final name and move it there; False when the file there
        already holds exactly these bytes (it is left untouched)."""
        jsonl = workdir / JSONL_NAME
        with jsonl.open("wb") as out:
            for part in parts[:2]:
                _copy(part, out)
            for line in self._direct_channel_lines:
                out.write(line)
            _copy(parts[2], out)
        temp = workdir / "package.zip"
        with zipfile.ZipFile(temp, "w", allowZip64=True) as archive:
            _add(archive, JSONL_NAME, jsonl, zipfile.ZIP_DEFLATED)
            seen: set[str] = set()
            for name, source in sorted(attachments):
                if name not in seen:
                    seen.add(name)
                    _add(archive, name, source, zipfile.ZIP_STORED)
        if path.exists() and _file_hash(path) == _file_hash(temp):
            return False
        os.replace(temp, path)
        return True

    def _record(self, conn: sa.Connection, number: int, path: Path, written: bool, head_hash: str) -> None:
        posts, packages = self.t["mm_posts"], self.t["mm_packages"]
        update = posts.update().where(posts.c.message_id == sa.bindparam("mid")).values(line_hash=sa.bindparam("h"))
        self.line_hashes.seek(0)
        batch: list[dict[str, str]] = []
        for line in self.line_hashes:
            mid, _, value = line.decode().rstrip("\n").partition("\t")
            batch.append({"mid": mid, "h": value})
            if len(batch) >= 10_000:
                conn.execute(update, batch)
                batch = []
        if batch:
            conn.execute(update, batch)
        row = {"path": str(path), "sha256": _file_hash(path), "head_hash": head_hash,
               "post_lines": self.counts.lines.get("post", 0) + self.counts.lines.get("direct_post", 0)}
        if conn.execute(sa.select(packages.c.number).where(packages.c.number == number)).first():
            conn.execute(packages.update().where(packages.c.number == number).values(**row))
        else:
            conn.execute(packages.insert().values(number=number, **row))


def _post_props(props: dict[str, Any]) -> dict[str, Any] | None:
    """What Mattermost shows of a message's source props: Slack-style message attachments (Mattermost
    renders the same format), when they fit its props limit."""
    attachments = props.get("attachments")
    if not isinstance(attachments, list) or not attachments or not all(isinstance(a, dict) for a in attachments):
        return None
    keep = {"attachments": attachments}
    if len(orjson.dumps(keep)) > mm.MAX_PROPS_BYTES:
        return None
    return keep


def channel_namespace(team_id: str | None, forced_team: str | None) -> str:
    """Channel names are unique per Mattermost team: the namespace of a channel's name."""
    return "channel:default" if forced_team or not team_id else f"channel:{team_id}"


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, out: IO[bytes]) -> None:
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            out.write(chunk)


def _add(archive: zipfile.ZipFile, name: str, source: Path, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            out.write(chunk)
