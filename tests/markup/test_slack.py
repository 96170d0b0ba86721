import pytest

from chatmigrate.markup.slack import to_markdown

USERS = {"U1": "alice", "U2": "bob"}
CHANNELS = {"C1": "general"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("hi <@U1>!", "hi @alice!"),
        ("old style <@U2|bob>", "old style @bob"),
        ("unknown <@U9>", "unknown @U9"),
        ("see <#C1|general> and <#C1>", "see ~general and ~general"),
        ("<#C7|renamed>", "~renamed"),
        ("<!here> <!channel> <!everyone> <!here|here>", "@here @channel @everyone @here"),
        ("<!subteam^S1|@devs> <!subteam^S2>", "@devs @S2"),
        ("<https://x.org/a?b=1&amp;c=2|the docs>", "[the docs](https://x.org/a?b=1&c=2)"),
        ("bare <https://y.org>", "bare https://y.org"),
        ("<mailto:a@b.org|a@b.org>", "[a@b.org](mailto:a@b.org)"),
        ("<!date^1392734382^{date_short}|Feb 18, 2014>", "Feb 18, 2014"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
        ("&amp;lt; stays one level", "&lt; stays one level"),
        ("*bold* _italic_ ~strike~", "**bold** _italic_ ~~strike~~"),
        ("2*3*4 and snake_case_name", "2*3*4 and snake_case_name"),
        ("*hi <@U1>*", "**hi @alice**"),
        ("`*not bold* &lt;x&gt;`", "`*not bold* <x>`"),
        ("```*pre* <@U1> &lt;@U1&gt;```", "```\n*pre* @alice <@U1>\n```"),
        ("`something <@U1> `", "`something @alice `"),
        ("before ```\nline1\nline2\n``` after *b*", "before ```\nline1\nline2\n``` after **b**"),
        ("", ""),
        ("plain text", "plain text"),
    ],
)
def test_to_markdown(source: str, expected: str) -> None:
    assert to_markdown(source, USERS, CHANNELS) == expected
