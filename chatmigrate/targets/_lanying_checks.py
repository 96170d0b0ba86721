"""蓝莺IM's rules applied to the stream (CM5xx): what the API cannot carry, said plainly at the record's
location, in `validate --to lanying://…` as in `migrate`. Reads nothing from the server (a dry run
works offline); names already taken in the app are only known when the run registers users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatmigrate.model import EXISTING_USER_PROP, Channel, Emoji, Item, Message, Team, User
from chatmigrate.targets import _lanying_rules as ly
from chatmigrate.validate.findings import Finding, FindingSink


class LanyingChecks:
    def __init__(self, sink: FindingSink) -> None:
        self.sink = sink
        self._names: dict[str, str] = {}  # lower-case 蓝莺IM name → record id
        self._conversations: set[str] = set()

    def __call__(self, items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Message):
                self._message(item)
            elif isinstance(item, User):
                self._user(item)
            elif isinstance(item, Channel):
                self._channel(item)
            elif isinstance(item, Team):
                self._note("CM507", item, f"team {item.name!r} is not carried (蓝莺IM has no teams): its channels "
                           "become groups of the app")
            elif isinstance(item, Emoji):
                self._note("CM507", item, f"custom emoji :{item.name}: is not carried (蓝莺IM has no custom emoji)")
            yield item

    def _note(self, code: str, record: Any, text: str) -> None:
        self.sink.add(Finding(code, text, record.record_kind, record.id, record.origin))

    def _user(self, user: User) -> None:
        if isinstance(user.props.get(EXISTING_USER_PROP), dict):
            return  # merged onto a user the app holds: not registered, its name stays
        base = ly.username(user.username)
        name, n = base, 1
        while name.lower() in self._names and self._names[name.lower()] != user.id:
            n += 1
            name = ly.numbered(base, n)
        self._names[name.lower()] = user.id
        if name != user.username:
            why = "collides with another user's" if name != base else "is not valid in 蓝莺IM"
            self._note("CM505", user, f"username {user.username!r} {why}: registered as {name!r}")

    def _channel(self, channel: Channel) -> None:
        people = len(set(channel.member_ids))
        if channel.kind == "group" or (channel.kind == "direct" and people > 2):
            self._note("CM508", channel, f"conversation {channel.name!r} of {people} people becomes a private "
                       "蓝莺IM group")

    def _message(self, message: Message) -> None:
        if message.channel_id not in self._conversations:
            self._conversations.add(message.channel_id)
            self._note("CM501", message, "messages of this conversation get 蓝莺IM's send time (its API cannot set "
                       "one); the original time, author and thread are in ext.chatmigrate")
        if message.deleted_at is not None or message.kind == "tombstone":
            self._note("CM504", message, "a deleted message is not sent")
            return
        if not message.text.strip() and not message.files:
            self._note("CM504", message, "a message with neither text nor files is not sent")
            return
        if message.thread_root_id:
            self._note("CM502", message, f"reply to {message.thread_root_id}: sent as a plain message, its root in ext")
        kept = [what for what, present in (("reactions", message.reactions), ("pin", message.is_pinned),
                                           ("edit time", message.edited_at)) if present]
        if kept:
            self._note("CM503", message, f"{', '.join(kept)} kept only in ext (蓝莺IM's API cannot set them)")
        for file in message.files:
            if file.props.get("missing"):
                self._note("CM506", message, f"file {file.name!r} has no bytes in the source: sent as a text naming it")
