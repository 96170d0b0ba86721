"""extractors/_files.py: the fast JSON-array path gives exactly the lines of the exact path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmigrate.extractors import _files
from chatmigrate.extractors._files import iter_json_array

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)
LAYOUTS = [{"indent": 4}, {"indent": 2}, {}, {"indent": 0}, {"indent": "\t"}, {"indent": 4, "ensure_ascii": False}]


def exact(data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    with monkeypatch.context() as patch:
        patch.setattr(_files, "_fast_elements", lambda _: None)
        return list(iter_json_array(data, "x.json"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.lists(values, max_size=6), layout=st.sampled_from(LAYOUTS))
def test_fast_path_equals_exact_path(monkeypatch: pytest.MonkeyPatch, document: list, layout: dict) -> None:
    data = json.dumps(document, **layout).encode()
    assert list(iter_json_array(data, "x.json")) == exact(data, monkeypatch)


def test_slack_layout_takes_the_fast_path() -> None:
    data = json.dumps([{"type": "message", "text": "    {"}, {"blocks": [{"a": 1}]}], indent=4).encode()
    assert _files._fast_elements(data) == [(2, {"type": "message", "text": "    {"}), (6, {"blocks": [{"a": 1}]})]


def test_lone_surrogates_still_decode_exactly() -> None:
    assert list(iter_json_array(b'[\n    "a \\ud800 b"\n]', "x.json")) == [(2, "a \ud800 b")]
