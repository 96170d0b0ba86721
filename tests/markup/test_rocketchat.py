"""Rocket.Chat markup → canonical Markdown: a table of (source, channels, expected)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmigrate.markup.rocketchat import to_markdown

CASES = [
    # emphasis
    ("*bold*", None, "**bold**"),
    ("a *b c* d", None, "a **b c** d"),
    ("**already canonical**", None, "**already canonical**"),
    ("_italic_", None, "_italic_"),
    ("~strike~", None, "~~strike~~"),
    ("~~already~~", None, "~~already~~"),
    ("*bold* and ~gone~", None, "**bold** and ~~gone~~"),
    ("2 * 3 * 4", None, "2 * 3 * 4"),
    ("a*b*c", None, "a*b*c"),
    ("* list item", None, "* list item"),
    ("ordinary ~ tilde", None, "ordinary ~ tilde"),
    # mentions stay as they are
    ("@bob @all @here @first.last", None, "@bob @all @here @first.last"),
    # channel links
    ("see #dev", None, "see ~dev"),
    ("see #dev", ["dev"], "see ~dev"),
    ("fix #12", ["dev"], "fix #12"),
    ("#dev.", None, "~dev."),
    ("# Heading", None, "# Heading"),
    ("page#top", None, "page#top"),
    ("канал #новости", None, "канал ~новости"),
    # links
    ("[*docs*](https://x.org/a_b_)", None, "[**docs**](https://x.org/a_b_)"),
    ("<https://x.org/a_b|the *label*>", None, "[the **label**](https://x.org/a_b)"),
    ("<https://x.org|>", None, "[https://x.org](https://x.org)"),
    ("https://x.org/*not*bold_ #frag", None, "https://x.org/*not*bold_ ~frag"),
    ("![img](https://x.org/i.png)", None, "![img](https://x.org/i.png)"),
    # code is never touched
    ("`*x* #dev`", None, "`*x* #dev`"),
    ("```\n*a* ~b~\n``` *c*", None, "```\n*a* ~b~\n``` **c**"),
    ("```unclosed *a*", None, "```unclosed *a*"),
    # multi-line
    ("*Update your Rocket.Chat*\nNew version", None, "**Update your Rocket.Chat**\nNew version"),
    ("", None, ""),
]


@pytest.mark.parametrize(("source", "channels", "expected"), CASES)
def test_to_markdown(source: str, channels: list[str] | None, expected: str) -> None:
    result, changed = to_markdown(source, channels)
    assert result == expected
    assert changed == (source != expected)


@given(st.text(alphabet=st.sampled_from(list("ab *_~#`[]()<>|:/.\n@")), max_size=60))
def test_never_crashes_and_reports_change_honestly(text: str) -> None:
    result, changed = to_markdown(text)
    assert isinstance(result, str)
    assert changed == (result != text)


@given(st.text(alphabet=st.sampled_from(list("ab *_~#`[]()|:/.\n@")), max_size=60))
def test_words_survive(text: str) -> None:
    # Without `<url|label>` (which repeats the url as the label), conversion only adds or rewrites sigils.
    result, _changed = to_markdown(text)
    assert result.replace("*", "").replace("~", "").replace("#", "").count("a") == text.replace(
        "*", "").replace("~", "").replace("#", "").count("a")
