"""Every credential form a driver accepts is hidden (issue 12 #7), and input text is printable (#15)."""

from __future__ import annotations

import pytest

from chatmigrate.redact import is_secret_name, printable, redact, remember


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The password of a URL, also when it holds an unencoded '@' or '/': hidden whole.
        ("postgresql+psycopg://u:s3cret@db/chat", "postgresql+psycopg://u:***@db/chat"),
        ("postgresql+psycopg://u:p@ss@word@127.0.0.1/db", "postgresql+psycopg://u:***@127.0.0.1/db"),
        ("mysql+pymysql://u:pa/ss@db/chat?x=a@b", "mysql+pymysql://u:***@db/chat?x=a@b"),
        ("pg://bob@corp:pw@host/db", "pg://bob@corp:***@host/db"),
        # Credentials as query parameters, which libpq and pymysql accept as well.
        ("postgresql+psycopg://u@db/chat?password=SECRET&sslmode=require",
         "postgresql+psycopg://u@db/chat?password=***&sslmode=require"),
        ("postgresql+psycopg://u@db/chat?sslpassword=SECRET&passfile=/home/u/.pgpass",
         "postgresql+psycopg://u@db/chat?sslpassword=***&passfile=***"),
        ("mysql+pymysql://u@db/chat?passwd=SECRET", "mysql+pymysql://u@db/chat?passwd=***"),
        # The message around a query secret keeps its punctuation.
        ("pg://u@h/db?password=SECRET: creating the schema failed",
         "pg://u@h/db?password=***: creating the schema failed"),
        # libpq's keyword form, as a driver may echo it.
        ("host=db password=SECRET dbname=chat", "host=db password=*** dbname=chat"),
        ("password='two words' host=db", "password=*** host=db"),
        ("https://files.slack.com/x.png?t=xoxe-1-abc", "https://files.slack.com/x.png?t=***"),
        ("token xoxb-123-abc", "token xox*-***"),
    ],
)
def test_credentials_are_hidden(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected


@pytest.mark.parametrize("text", ["mysql+pymysql://root@127.0.0.1:3306/test", "https://host:8080/a/b",
                                  "https://user@host:8080/x", "sqlite:////tmp/a@b/x.db", "?sslmode=require"])
def test_plain_urls_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_remembered_secrets_and_secret_names() -> None:
    remember("pass word with spaces")
    remember("pw")  # too short to mask everywhere: the patterns cover it
    assert redact("failed for 'pass word with spaces'; pw") == "failed for '***'; pw"
    assert is_secret_name("sslpassword") and is_secret_name("password") and is_secret_name("t")
    assert not is_secret_name("sslmode") and not is_secret_name("read_default_group")


def test_printable_escapes_what_a_terminal_must_not_see() -> None:
    assert printable("a\x00b\nc\td\x1b[2J \ud800 \u202e é 😀") == "a\\x00b\\nc\\td\\x1b[2J \\ud800 \\u202e é 😀"
    assert printable("plain text") == "plain text"
