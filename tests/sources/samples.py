"""The sample of every source, by `--from` name: what the conformance suite (test_conformance.py) reads.

A new source gets the whole suite by adding one entry here: a context manager that yields the location
to read and the options to read it with (an export form names its file in samples/; an API form starts
its loopback server holding a sample's data). Options pin what the suite's exact checks need: a source
that re-reads an overlap on its own (Rocket.Chat's overlap_seconds, Slack's thread lookback) is asked not
to, so that "resuming from a checkpoint gives the rest and nothing else" can be checked exactly.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.sources.servers.mattermost import TOKEN as MM_TOKEN
from tests.sources.servers.mattermost import mattermost_server
from tests.sources.servers.rocketchat import TOKEN as RC_TOKEN
from tests.sources.servers.rocketchat import USER_ID as RC_USER
from tests.sources.servers.rocketchat import rocketchat_server
from tests.sources.servers.slack import TOKEN as SLACK_TOKEN
from tests.sources.servers.slack import slack_server

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"

Opened = AbstractContextManager[tuple[str, dict[str, str]]]


@contextmanager
def _path(path: Path, **options: str) -> Iterator[tuple[str, dict[str, str]]]:
    yield str(path), options


@contextmanager
def _slack_api(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with slack_server() as (url, _state):
        yield url, {"token": SLACK_TOKEN, "page_size": "3", "thread_lookback_days": "0"}


@contextmanager
def _mattermost_api(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with mattermost_server() as (url, _state):
        yield url, {"token": MM_TOKEN, "per_page": "3"}


@contextmanager
def _rocketchat_api(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with rocketchat_server() as (url, _state):
        yield url, {"token": RC_TOKEN, "user_id": RC_USER, "page_size": "3", "overlap_seconds": "0"}


@contextmanager
def _lanying_api(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """蓝莺IM holds what its target sent: the Slack sample, migrated into a loopback server first."""
    from chatmigrate import pipeline
    from chatmigrate.extractors import detect
    from chatmigrate.targets import target_for
    from tests.lanying_server import ADMIN_TOKEN, APP_ID, running, target_url

    slack = SAMPLES / "slack"
    with pytest.MonkeyPatch.context() as patch, running() as server:
        patch.setenv("CHATMIGRATE_LANYING_TOKEN", ADMIN_TOKEN)
        target = target_for(target_url(server, tmp / "lanying-hub.db"))
        try:
            pipeline.run(detect(str(slack))(str(slack), {}), target,
                         pipeline.RunOptions("migrate", str(slack), progress=False))
        finally:
            target.close()
        yield f"lanying+http://{server.url.split('://', 1)[1]}?app_id={APP_ID}", {}


SAMPLE_OF: dict[str, Callable[[Path], Opened]] = {
    "slack-export": lambda tmp: _path(SAMPLES / "slack"),
    "slack-api": _slack_api,
    "mattermost-export": lambda tmp: _path(SAMPLES / "mattermost" / "export.zip"),
    "mattermost-api": _mattermost_api,
    "rocketchat-dump": lambda tmp: _path(SAMPLES / "rocketchat" / "dump"),
    "rocketchat-api": _rocketchat_api,
}
if importlib.util.find_spec("chatmigrate.extractors.lanying_api") and (REPO / "tests" / "lanying_server.py").exists():
    SAMPLE_OF["lanying-api"] = _lanying_api
