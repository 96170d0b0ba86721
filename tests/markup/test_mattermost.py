"""Mattermost text → canonical Markdown: mentions and channel links normalised, the rest verbatim."""

from __future__ import annotations

import pytest

from chatmigrate.markup.mattermost import to_markdown


@pytest.mark.parametrize(("source", "expected"), [
    # Already canonical: returned unchanged (the same object, so callers can test identity).
    ("@ron Welcome mate!", "@ron Welcome mate!"),
    ("see ~town-square and @harry.potter", "see ~town-square and @harry.potter"),
    ("", ""),
    ("plain **bold** _it_ ~~strike~~", "plain **bold** _it_ ~~strike~~"),
    # Mentions and channel links are case-insensitive in Mattermost; stored names are lowercase.
    ("@Ron Welcome", "@ron Welcome"),
    ("ask @Harry.Potter, then @GINNY.", "ask @harry.potter, then @ginny."),
    ("@Channel @ALL @here please", "@channel @all @here please"),
    ("go to ~Town-Square now", "go to ~town-square now"),
    ("(~Off-Topic)", "(~off-topic)"),
    # Not mentions: e-mail addresses, URLs, paths.
    ("mail Ron@Example.COM", "mail Ron@Example.COM"),
    ("https://example.com/@Ron/~Home", "https://example.com/@Ron/~Home"),
    ("[Ron](https://x.test/@Ron) says hi @Ron", "[Ron](https://x.test/@Ron) says hi @ron"),
    ("<https://x.test/~Team>", "<https://x.test/~Team>"),
    ("a/@Path and a/~Path", "a/@Path and a/~Path"),
    # Code is verbatim.
    ("`@Ron` but @Ron", "`@Ron` but @ron"),
    ("```\n@Ron ~Town\n```\n@Ron", "```\n@Ron ~Town\n```\n@ron"),
    ("~~~py\nx = '@Ron'\n~~~\n~Town", "~~~py\nx = '@Ron'\n~~~\n~town"),
    ("``code with ` @Ron``", "``code with ` @Ron``"),
    ("```\nunclosed @Ron", "```\nunclosed @Ron"),
    # Strikethrough and approximations are not channel links.
    ("~~@Ron~~", "~~@ron~~"),
    ("about ~5 minutes", "about ~5 minutes"),
    # Unicode passes through.
    ("héllo 👋 @Zoë", "héllo 👋 @Zoë"),
    ("日本語 @Ron 🎉", "日本語 @ron 🎉"),
])
def test_to_markdown(source: str, expected: str) -> None:
    assert to_markdown(source) == expected


def test_unchanged_text_is_returned_as_is() -> None:
    text = "nothing to do @ron ~town-square"
    assert to_markdown(text) is text
