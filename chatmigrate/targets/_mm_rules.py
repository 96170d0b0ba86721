"""Mattermost's rules for what it imports, as pure functions (facts and sources in
../shared/research/targets.md §A.4: server/public/model/{user,team,channel,emoji,post,utils}.go).

Every function is deterministic: the same input gives the same output on every run, which is what
makes a re-import overwrite instead of duplicate.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatmigrate.mappings import name_set, table

# Mattermost's built-in emoji names, one per line (mappings/README.md says where they come from).
SYSTEM_EMOJI_FILE = "mattermost-system-emoji.txt"
MAX_POST_RUNES = 16_383  # PostMessageMaxRunesV2
MAX_FILES_PER_POST = 5  # FileIds ≤ 300 runes ≈ 10 ids; mmetl's proven 5
MAX_GROUP_MEMBERS = 8  # ChannelGroupMaxUsers
NAME_MAX = 64  # username, team name, channel name (bytes for channels: ASCII here), emoji name
DISPLAY_MAX = 64
HEADER_MAX = 1024
PURPOSE_MAX = 250
TEAM_DESCRIPTION_MAX = 255
EMAIL_MAX = 128
NICKNAME_MAX = 64
POSITION_MAX = 128
MAX_PROPS_BYTES = 800_000  # PostPropsMaxRunes (runes; bytes is the safe side)

RESERVED_USERNAMES = frozenset({"all", "channel", "matterbot", "system", "here", "everyone"})
# A team name may not *start* with one of these (utils.go reservedName, prefix match).
RESERVED_TEAM_PREFIXES = ("admin", "api", "channel", "claim", "error", "files", "help", "landing", "login",
                          "mfa", "oauth", "plug", "plugins", "post", "signup", "boards", "playbooks")

_USERNAME_OK = re.compile(r"^[a-z][a-z0-9.\-_]{0,63}$")
_TEAM_OK = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
_CHANNEL_OK = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$")
_EMOJI_OK = re.compile(r"^[a-zA-Z0-9+\-_]{1,64}$")


def _ascii_fold(text: str) -> str:
    """Letters with accents to their base letter (é → e); other non-ASCII characters dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def username(raw: str) -> str:
    """A valid Mattermost username for `raw`: lower case, a-z 0-9 . - _, starting with a letter,
    at most 64 characters, not a reserved word."""
    name = re.sub(r"[^a-z0-9.\-_]+", "_", _ascii_fold(raw).lower()).strip("._-")
    if not name or not name[0].isalpha():
        name = f"u{name}" if name else "user"
    name = name[:NAME_MAX].rstrip("._-") or "user"
    if name in RESERVED_USERNAMES:
        name = f"{name}_user"
    return name


def is_valid_username(name: str) -> bool:
    return bool(_USERNAME_OK.match(name)) and name not in RESERVED_USERNAMES


def team_name(raw: str) -> str:
    """A valid team name: 2-64 of a-z 0-9 -, letters or digits at both ends, no reserved prefix."""
    name = re.sub(r"[^a-z0-9]+", "-", _ascii_fold(raw).lower()).strip("-")
    if any(name.startswith(prefix) for prefix in RESERVED_TEAM_PREFIXES):
        name = f"team-{name}"
    if len(name) < 2:
        name = f"team{name}" if name else "team"
    return name[:NAME_MAX].rstrip("-")


def is_valid_team_name(name: str) -> bool:
    return (2 <= len(name) <= NAME_MAX and bool(_TEAM_OK.match(name))
            and not any(name.startswith(prefix) for prefix in RESERVED_TEAM_PREFIXES))


def channel_name(raw: str) -> str:
    """A valid channel name: 1-64 of a-z 0-9 - _, starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9\-_]+", "-", _ascii_fold(raw).lower()).strip("-_")
    if not name:
        name = "channel"
    name = name[:NAME_MAX].rstrip("-_")
    if len(name) == 1:
        name = f"{name}-channel"  # Mattermost's UI refuses one-character channel names
    return name


def is_valid_channel_name(name: str) -> bool:
    return 1 < len(name) <= NAME_MAX and bool(_CHANNEL_OK.match(name))


def emoji_name(raw: str) -> str:
    """A valid emoji name: skin-tone suffixes (`thumbsup::skin-tone-2`) dropped, other refused
    characters replaced by `_`."""
    base = raw.strip(":").split("::", 1)[0]
    name = re.sub(r"[^a-zA-Z0-9+\-_]+", "_", base)[:NAME_MAX]
    return name or "emoji"


@functools.lru_cache(maxsize=8192)
def reaction_name(raw: str) -> str:
    """A reaction's emoji as Mattermost names it: another platform's name mapped to Mattermost's
    (mappings/emoji.toml), a Slack skin tone (`+1::skin-tone-2`) kept where Mattermost has that toned
    emoji (`+1_light_skin_tone`), else dropped. Custom emoji names go through `emoji_name` only."""
    names = table("emoji")
    base, _, tone = raw.strip(":").partition("::skin-tone-")
    base = names["to_mattermost"].get(base, base)
    suffix = names["skin_tones"]["mattermost"].get(tone)
    if suffix and f"{base}_{suffix}" in name_set(SYSTEM_EMOJI_FILE):
        return f"{base}_{suffix}"
    return emoji_name(base)


def is_valid_emoji_name(name: str) -> bool:
    return bool(_EMOJI_OK.match(name))


def cut(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters (Mattermost counts runes); None stays None."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_text(text: str, limit: int = MAX_POST_RUNES) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at the last line break (else space) of each
    window when one lies in its second half; the parts joined give `text` back."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        at = max(window.rfind("\n"), -1)
        if at < limit // 2:
            at = window.rfind(" ")
        cut_at = at + 1 if at >= limit // 2 else limit
        parts.append(rest[:cut_at])
        rest = rest[cut_at:]
    parts.append(rest)
    return parts


def part_count(text_length: int, text: str | None, file_count: int) -> int:
    """How many posts one message becomes: its text parts, and 5 attachments per post."""
    text_parts = len(split_text(text)) if text is not None and text_length > MAX_POST_RUNES else 1
    file_parts = -(-file_count // MAX_FILES_PER_POST) if file_count else 1
    return max(text_parts, file_parts, 1)




@dataclass
class NameBook:
    """Mattermost names given to canonical records, unique per namespace (users, teams, emoji; a
    team's channels), first come first served, kept for later runs: a name once given never changes.

    `taken` maps (namespace, record id) → name; `assign` returns the name and why it differs from
    the wanted one ("changed" when sanitised, "collision" when a suffix was needed, None when equal).
    """

    taken: dict[tuple[str, str], str] = field(default_factory=dict)
    _owners: dict[tuple[str, str], str] = field(default_factory=dict)
    new: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for (namespace, record_id), name in self.taken.items():
            self._owners[(namespace, name)] = record_id

    def get(self, namespace: str, record_id: str) -> str | None:
        return self.taken.get((namespace, record_id))

    def assign(self, namespace: str, record_id: str, wanted: str, valid: str) -> tuple[str, str | None]:
        """Give `record_id` the name `valid` (the sanitised form of `wanted`), or `valid-2`, `valid-3`…
        when another record holds it."""
        known = self.taken.get((namespace, record_id))
        if known is not None:
            return known, None if known == wanted else "changed"
        name, n = valid, 1
        while (namespace, name) in self._owners:
            n += 1
            suffix = f"-{n}"
            name = valid[: NAME_MAX - len(suffix)] + suffix
        self.taken[(namespace, record_id)] = name
        self._owners[(namespace, name)] = record_id
        self.new.append((namespace, record_id, name))
        if name != valid:
            return name, "collision"
        return name, None if name == wanted else "changed"

    def owner(self, namespace: str, name: str) -> str | None:
        """The record that holds `name`, if any."""
        return self._owners.get((namespace, name))

    def reserve(self, namespace: str, record_id: str, name: str) -> str | None:
        """Give `record_id` exactly `name` (a user the server already holds keeps its username), so no
        other record gets it; the id of the record that already holds it otherwise (nothing changes)."""
        owner = self._owners.get((namespace, name))
        if owner is not None and owner != record_id:
            return owner
        if owner is None and (namespace, record_id) not in self.taken:
            self.taken[(namespace, record_id)] = name
            self._owners[(namespace, name)] = record_id
            self.new.append((namespace, record_id, name))
        return None

    def items(self) -> Iterable[tuple[tuple[str, str], str]]:
        return self.taken.items()
