"""The standing fuzz test: damaged copies of every sample, for every source form, never crash a run.

Each case takes one sample (Slack folder and a zip of it, Mattermost export.jsonl and export.zip,
Rocket.Chat dump), applies a few random mutations drawn from a fixed seed (a deleted key, a value of
the wrong JSON type, a lone surrogate, truncation, random bytes, invalid UTF-8, a corrupt zip member,
a cut gzip stream), then runs `chatmigrate validate` (source detected) and `chatmigrate migrate
--from NAME` into a fresh SQLite file, in-process. A run may reject records (exit 1) or refuse an
input it cannot read at all (exit 2, one line); it may never fail internally (exit 3), print a
traceback, hang, or lose count: every --json `counts` entry balances.

Deterministic (seeded by form and case number) and bounded: about 40 s for all cases on 2 cores.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import bson.errors
import pytest
from click.testing import CliRunner

from chatmigrate.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CASES = 120  # per form

# Values of the wrong type (or of the right type but hostile) to put where another belongs.
WRONG: list[Callable[[random.Random], Any]] = [
    lambda r: r.randint(-10, 10**13), lambda r: r.random() * 1e9, lambda r: True, lambda r: None,
    lambda r: "", lambda r: "x" * r.randint(1, 40), lambda r: {"id": "X", "n": 1}, lambda r: [1, "a", None],
    lambda r: [], lambda r: {}, lambda r: "\ud800", lambda r: "U0ALICE01\udfff", lambda r: "\x00",
]
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]


# -- mutations of decoded documents ---------------------------------------------------------------
def _slots(value: Any, depth: int = 0) -> list[tuple[int, Any, Any]]:
    """Every (depth, container, key) of a JSON-like value, a few levels deep."""
    found: list[tuple[int, Any, Any]] = []
    if depth > 4:
        return found
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((depth, value, key))
        found.extend(_slots(child, depth + 1))
    return found


def mutate_document(doc: Any, rng: random.Random, surrogates: bool = True) -> None:
    slots = _slots(doc)
    if not slots:
        return
    # Mostly the fields of a record (depth 0-1 of a line or document, 1-2 of a JSON array), where the
    # extractor reads; sometimes anywhere (nested blocks, props).
    near = [s for s in slots if s[0] <= (2 if isinstance(doc, list) else 1)]
    _depth, container, key = rng.choice(near if near and rng.random() < 0.75 else slots)
    if isinstance(container, dict) and rng.random() < 0.35:
        del container[key]
        return
    value = rng.choice(WRONG)(rng)
    if not surrogates and isinstance(value, str):
        value = value.encode("utf-8", "replace").decode()  # BSON cannot hold lone surrogates
    container[key] = value


# -- mutations of bytes -----------------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    choice = rng.randrange(4)
    if choice == 0:
        return data[:rng.randrange(len(data))]
    out = bytearray(data)
    if choice == 1:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif choice == 2:
        at = rng.randrange(len(out))
        out[at:at] = rng.choice(INVALID_UTF8)
    else:
        at = rng.randrange(len(out))
        del out[at:at + rng.randint(1, 64)]
    return bytes(out)


def corrupt_zip_member(path: Path, rng: random.Random) -> None:
    """Damage the compressed bytes of one member (the rest of the archive stays readable)."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if i.compress_size > 4]
    if not infos:
        return
    info = rng.choice(infos)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for _ in range(rng.randint(1, 6)):
        data[start + rng.randrange(info.compress_size)] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return out


# -- one damaged input per source form ---------------------------------------------------------------
def _mutate_json_file(path: Path, rng: random.Random) -> None:
    if rng.random() < 0.6:
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            doc = None
        if doc is not None:
            for _ in range(rng.randint(1, 3)):
                mutate_document(doc, rng)
            # ensure_ascii writes lone surrogates as \\udxxx escapes, as broken exporters do
            path.write_text(json.dumps(doc, indent=4))
            return
    path.write_bytes(mutate_bytes(path.read_bytes(), rng))


def slack_folder(tmp: Path, rng: random.Random) -> Path:
    folder = tmp / "slack"
    shutil.copytree(SAMPLES / "slack", folder)
    files = sorted(p for p in folder.rglob("*.json"))
    for _ in range(rng.randint(1, 3)):
        _mutate_json_file(rng.choice(files), rng)
    return folder


def slack_zip(tmp: Path, rng: random.Random) -> Path:
    archive = zip_folder(slack_folder(tmp, rng) if rng.random() < 0.5 else _copy(SAMPLES / "slack", tmp / "s"),
                         tmp / "slack.zip")
    if rng.random() < 0.7:
        corrupt_zip_member(archive, rng)
    if rng.random() < 0.2:
        archive.write_bytes(mutate_bytes(archive.read_bytes(), rng))
    return archive


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _mutate_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        # Line 0 is the version line: damaging it makes the file no export at all, which is rarely useful.
        at = rng.randrange(1, len(lines)) if len(lines) > 1 and rng.random() < 0.9 else 0
        choice = rng.randrange(4)
        if choice == 0:
            try:
                doc = json.loads(lines[at])
            except ValueError:
                continue
            for _ in range(rng.randint(1, 3)):
                mutate_document(doc, rng)
            lines[at] = json.dumps(doc, separators=(",", ":")).encode()
        elif choice == 1:
            lines[at] = mutate_bytes(lines[at], rng)
        elif choice == 2:
            lines.insert(at, lines[at])  # a duplicate line
        else:
            del lines[at]
    out = b"\n".join(lines)
    return out[:rng.randrange(len(out))] if rng.random() < 0.1 else out


def mattermost_jsonl(tmp: Path, rng: random.Random) -> Path:
    folder = tmp / "mm"
    folder.mkdir()
    shutil.copytree(SAMPLES / "mattermost" / "data", folder / "data")
    path = folder / "export.jsonl"
    path.write_bytes(_mutate_lines((SAMPLES / "mattermost" / "export.jsonl").read_bytes(), rng))
    return path


def mattermost_zip(tmp: Path, rng: random.Random) -> Path:
    path = tmp / "export.zip"
    with zipfile.ZipFile(SAMPLES / "mattermost" / "export.zip") as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".jsonl") and rng.random() < 0.6:
                data = _mutate_lines(data, rng)
            target.writestr(info.filename, data)
    if rng.random() < 0.6:
        corrupt_zip_member(path, rng)
    if rng.random() < 0.15:
        path.write_bytes(mutate_bytes(path.read_bytes(), rng))
    return path


def rocketchat_dump(tmp: Path, rng: random.Random) -> Path:
    dump = _copy(SAMPLES / "rocketchat" / "dump", tmp / "dump")
    collections = sorted((dump / "rocketchat").glob("*.bson"))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(collections)
        if not path.exists():
            continue
        if rng.random() < 0.6:
            try:
                docs = bson.decode_all(path.read_bytes())
            except bson.errors.BSONError:
                docs = []  # damaged by an earlier mutation of this case
            if docs:
                for _ in range(rng.randint(1, 3)):
                    mutate_document(rng.choice(docs), rng, surrogates=False)
                path.write_bytes(b"".join(bson.encode(d) for d in docs))
        else:
            path.write_bytes(mutate_bytes(path.read_bytes(), rng))
    if rng.random() < 0.3:  # mongodump --gzip, perhaps cut short
        path = rng.choice([p for p in collections if p.exists()])
        packed = gzip.compress(path.read_bytes())
        path.with_name(path.name + ".gz").write_bytes(packed[:rng.randrange(10, len(packed))]
                                                      if rng.random() < 0.5 else packed)
        path.unlink()
    return dump


FORMS: dict[str, tuple[str, Callable[[Path, random.Random], Path]]] = {
    "slack-folder": ("slack-export", slack_folder),
    "slack-zip": ("slack-export", slack_zip),
    "mattermost-jsonl": ("mattermost-export", mattermost_jsonl),
    "mattermost-zip": ("mattermost-export", mattermost_zip),
    "rocketchat-dump": ("rocketchat-dump", rocketchat_dump),
}


# -- the runs ---------------------------------------------------------------------------------------------
def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}")
    return result.exit_code, result.stdout, result.stderr


def check(args: list[str], what: str) -> None:
    code, out, err = run(*args, "--json")
    assert code in (0, 1, 2), f"{what}: exit {code}: {err.strip()[-500:]}"
    assert "Traceback" not in out + err, f"{what}: traceback printed:\n{err[-2000:]}"
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("chatmigrate: error: "), f"{what}: exit 2 without its error line: {err}"
        return
    counts = json.loads(out)["counts"]
    for kind, c in counts.items():
        assert c["read"] + c["added"] == c["loaded"] + c["rejected"] + c["skipped"], f"{what}: {kind} {c}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", range(CASES))
@pytest.mark.parametrize("form", sorted(FORMS))
def test_damaged_input_never_crashes(form: str, case: int, tmp_path: Path) -> None:
    source, build = FORMS[form]
    rng = random.Random(f"{form}/{case}")  # str seeds are hashed with SHA-512: the same on every run
    (tmp_path / "in").mkdir()
    location = build(tmp_path / "in", rng)
    what = f"{form} case {case} ({location})"
    old = os.getcwd()
    os.chdir(tmp_path)  # migrate writes nothing beside the target and the rejects file, both in tmp
    try:
        check(["validate", str(location), "--rejects", str(tmp_path / "v.jsonl")], f"validate {what}")
        check(["migrate", str(location), "--from", source, "--to", f"sqlite:///{tmp_path / 'out.db'}",
               "--rejects", str(tmp_path / "m.jsonl")], f"migrate {what}")
    finally:
        os.chdir(old)
