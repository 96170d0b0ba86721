"""The contract's own parts: typed options (unknown names and ill-typed or out-of-range values are
usage errors naming the option, before a source is built), capabilities as sync sees them, and the
mapping tables the sources read their vocabularies from."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmigrate import sync
from chatmigrate.errors import UsageError
from chatmigrate.extractors import _vocabulary, capabilities_of, load
from chatmigrate.extractors.contract import MESSAGE_KINDS, ROLES, Capabilities
from chatmigrate.mappings import table
from chatmigrate.options import Option, build, check_values

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "slack"


@pytest.mark.parametrize(("name", "options", "expected"), [
    ("slack-export", {"download": "maybe"}, "-o download: 'maybe' is not a valid value (expected true: fetch"),
    ("slack-export", {"max_member_bytes": "0"}, "-o max_member_bytes: '0' is not a valid value (expected largest"),
    ("mattermost-api", {"per_page": "500"}, "-o per_page: '500' is not a valid value (expected items per API page; "
                                            "an integer from 1 to 200)"),
    ("slack-api", {"thread_lookback_days": "a week"}, "-o thread_lookback_days: 'a week' is not a valid value"),
])
def test_ill_typed_options_are_usage_errors_naming_the_option(name: str, options: dict[str, str],
                                                              expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        build(load(name), "https://chat.example.com" if name.endswith("-api") else str(SAMPLE), options)
    assert str(caught.value).startswith(expected), caught.value


def test_values_are_parsed_as_declared() -> None:
    assert Option("n", int, 1).parse(" 7 ") == 7 and Option("f", bool).parse("Yes") is True
    assert Option("x", float, 0).parse("0.5") == 0.5 and Option("t").parse(" as is ") == " as is "
    with pytest.raises(ValueError, match="an integer of at least 1"):
        Option("n", int, 1).parse("0")
    assert check_values(load("mattermost-export"), {"max_line_bytes": "1024", "scope": "x"}) == {
        "max_line_bytes": 1024, "scope": "x"}


def test_capabilities_decide_what_sync_rewinds() -> None:
    assert capabilities_of(load("slack-api")) == Capabilities(incremental=True, rewind=True, files=True)
    assert not capabilities_of(load("slack-export")).rewind and capabilities_of(load("slack-export")).files
    assert capabilities_of(object()) == Capabilities()  # a third-party class that declares nothing
    export = build(load("slack-export"), str(SAMPLE), {})
    assert sync._adjuster(export, 60) is None  # an export is re-read whole, its cursors unchanged
    api = build(load("slack-api"), "https://slack.com/api", {"token": "xoxb-not-used"})
    adjust = sync._adjuster(api, 60)
    assert adjust is not None and adjust("1709366940.001000") == "1709363340.001000"


def test_mapping_tables_name_only_canonical_values() -> None:
    for name in ("slack-subtypes", "rocketchat-message-types"):
        data = table(name)
        assert data["default"] in MESSAGE_KINDS and set(data["kinds"].values()) <= set(MESSAGE_KINDS)
    assert all(set(per["names"].values()) | {per["default"]} <= set(ROLES) for per in table("roles").values())
    assert _vocabulary.message_kind("slack-subtypes", "channel_join") == "system_join"
    assert _vocabulary.message_kind("slack-subtypes", "thread_broadcast") == "normal"
    assert _vocabulary.message_kind("rocketchat-message-types", "livechat-close") == "system_other"
    assert _vocabulary.role("slack", {"is_admin", "is_restricted"}, False) == "admin"
    assert _vocabulary.role("mattermost", {"system_guest"}, True) == "bot"
    assert _vocabulary.role("rocketchat", {"user"}, False) == "member"


@pytest.mark.parametrize("module", ["chatmigrate.files", "chatmigrate.extractors.contract", "chatmigrate.options",
                                    "chatmigrate.extractors.slack_api"])
def test_each_module_imports_first_in_a_fresh_process(module: str) -> None:
    """No import cycle: the contract is imported by extractors/__init__, which chatmigrate.files reaches."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
