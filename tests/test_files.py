"""Downloads of linked file bytes (chatmigrate/files) against a loopback server: every answer the sources
give (200, cross-host redirect, 429 + Retry-After, 5xx, cut bodies, 403, 404), resumption after a kill,
and a Slack export whose files end up in the hub store and a Mattermost package, checked by SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chatmigrate.files.download import FAILED, PRESENT, REFUSED, SKIPPED, Downloader, Job, Limits
from chatmigrate.targets._filestore import FileStore

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-1111-2222-secretsecret"


class Server:
    """A file server on 127.0.0.1 (and the same port on 127.0.0.2, "another host"): `routes` maps a path to
    a behaviour; `hits` counts requests per path and `auth` keeps the Authorization header each got."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        self.auth: dict[str, list[str | None]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server.lock:
                    n = server.hits[path] = server.hits.get(path, 0) + 1
                    server.auth.setdefault(path, []).append(self.headers.get("Authorization"))
                server.routes.get(path, lambda h, n: h.send_error(404))(self, n)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def body(self, path: str, data: bytes) -> None:
        self.routes[path] = lambda h, n: send(h, 200, data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler: BaseHTTPRequestHandler, code: int, data: bytes = b"", headers: dict[str, str] | None = None,
         length: int | None = None) -> None:
    handler.send_response(code)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(data) if length is None else length))
    handler.end_headers()
    handler.wfile.write(data)
    if length is not None and length != len(data):
        handler.close_connection = True


def cut(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    """Headers for the whole body, half of it, then the connection dropped."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data[: len(data) // 2])
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def downloader(tmp_path: Path, **kwargs: Any) -> Downloader:
    return Downloader(FileStore(tmp_path / "store"), allow_hosts=kwargs.pop("hosts", ["127.0.0.1"]), token=TOKEN,
                      retries=3, sleep=kwargs.pop("sleep", lambda s: None), **kwargs)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_200_stores_by_content_and_sends_the_token(tmp_path: Path, server: Server) -> None:
    data = os.urandom(3 << 20)
    server.body("/a", data)
    d = downloader(tmp_path)
    outcome = d.fetch(Job("f1", f"{server.url}/a?t=***", len(data), sha(data)))
    assert outcome.status == PRESENT and outcome.sha256 == sha(data) and outcome.size == len(data)
    assert d.store.path(sha(data)).read_bytes() == data
    assert server.auth["/a"] == [f"Bearer {TOKEN}"]
    assert d.fetch(Job("f1", f"{server.url}/a", len(data))).fetched == 0  # recorded: not fetched again
    assert server.hits["/a"] == 1
    assert not list((tmp_path / "store").glob(".part-*"))


def test_redirect_to_another_host_drops_the_token(tmp_path: Path, server: Server) -> None:
    other = Server("127.0.0.2")
    try:
        other.body("/cdn", b"bytes on the cdn")
        server.routes["/r"] = lambda h, n: send(h, 302, headers={"Location": f"{other.url}/cdn"})
        d = downloader(tmp_path, hosts=["127.0.0.1", "127.0.0.2"])
        assert d.fetch(Job("f", f"{server.url}/r")).status == PRESENT
        assert server.auth["/r"] == [f"Bearer {TOKEN}"] and other.auth["/cdn"] == [None]
        # A redirect to a host not on the allow-list is refused, not followed.
        assert downloader(tmp_path / "b").fetch(Job("g", f"{server.url}/r")).status == REFUSED
        assert other.hits["/cdn"] == 1
    finally:
        other.close()


def test_429_with_retry_after_and_5xx_are_retried(tmp_path: Path, server: Server) -> None:
    waits: list[float] = []
    server.routes["/busy"] = lambda h, n: (send(h, 429, headers={"Retry-After": "7"}) if n == 1 else
                                           send(h, 503) if n == 2 else send(h, 200, b"finally"))
    outcome = downloader(tmp_path, sleep=waits.append).fetch(Job("f", f"{server.url}/busy"))
    assert outcome.status == PRESENT and waits == [7.0, 2.0]
    server.routes["/down"] = lambda h, n: send(h, 500)
    failed = downloader(tmp_path).fetch(Job("g", f"{server.url}/down"))
    assert failed.status == FAILED and "HTTP 500" in (failed.reason or "") and server.hits["/down"] == 4


def test_cut_and_short_bodies_are_retried_and_never_kept_half(tmp_path: Path, server: Server) -> None:
    data = os.urandom(1 << 20)
    server.routes["/cut"] = lambda h, n: cut(h, data) if n == 1 else send(h, 200, data)
    server.routes["/short"] = lambda h, n: send(h, 200, data[:1000], length=len(data))
    d = downloader(tmp_path)
    assert d.fetch(Job("c", f"{server.url}/cut", len(data))).status == PRESENT
    short = d.fetch(Job("s", f"{server.url}/short"))
    assert short.status == FAILED and server.hits["/short"] == 4
    assert not list((tmp_path / "store").glob(".part-*"))
    assert sorted(p.name for p in (tmp_path / "store").glob("??/*")) == [sha(data)]


def test_403_and_404_are_refused_without_retry_and_redacted(tmp_path: Path, server: Server) -> None:
    server.routes["/expired"] = lambda h, n: send(h, 403, b"token expired")
    d = downloader(tmp_path)
    refused = d.fetch(Job("x", f"{server.url}/expired?t={TOKEN}"))
    gone = d.fetch(Job("y", f"{server.url}/gone"))
    assert (refused.status, gone.status) == (REFUSED, REFUSED)
    assert server.hits == {"/expired": 1, "/gone": 1}
    assert TOKEN not in (refused.reason or "") and "HTTP 403" in (refused.reason or "")
    assert TOKEN not in "".join(p.read_text() for p in (tmp_path / "store" / "by-id").glob("*/*"))


def test_size_sha_and_limits(tmp_path: Path, server: Server) -> None:
    server.body("/f", b"0123456789")
    d = downloader(tmp_path, limits=Limits(max_file_bytes=5))
    assert d.fetch(Job("big", f"{server.url}/f")).status == SKIPPED  # over the limit by Content-Length
    assert d.fetch(Job("big2", f"{server.url}/f", size=10)).status == SKIPPED  # by declared size: no request
    assert server.hits["/f"] == 1
    d = downloader(tmp_path)
    assert d.fetch(Job("wrong", f"{server.url}/f", size=11)).status == FAILED
    assert d.fetch(Job("lie", f"{server.url}/f", sha256="0" * 64)).status == FAILED
    budget = downloader(tmp_path / "b", limits=Limits(max_total_bytes=15))
    results = [budget.fetch(Job(f"k{i}", f"{server.url}/f", size=10)).status for i in range(2)]
    assert results == [PRESENT, SKIPPED]


# -- a Slack export end to end ------------------------------------------------------------------------------
def slack_export(tmp_path: Path, server: Server) -> tuple[Path, dict[str, bytes]]:
    """samples/slack without its __uploads, each file's url_private pointing at the loopback server."""
    export = tmp_path / "export"
    shutil.copytree(ROOT / "samples" / "slack", export, ignore=shutil.ignore_patterns("__uploads"))
    served: dict[str, bytes] = {}
    for day in export.glob("*/*.json"):
        messages = json.loads(day.read_text())
        for message in messages if isinstance(messages, list) else ():
            for file in message.get("files") or ():
                if file.get("mode") == "tombstone" or "id" not in file:
                    continue
                data = hashlib.sha512(file["id"].encode()).digest() * 1000
                served[file["id"]] = data
                file["size"] = len(data)
                file["url_private"] = f"{server.url}/files-pri/{file['id']}/{file.get('name', 'f')}?t=xoxe-123-456"
                file.pop("url_private_download", None)
                server.body(f"/files-pri/{file['id']}/{file.get('name', 'f')}", data)
        day.write_text(json.dumps(messages))
    assert served
    return export, served


def chatmigrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI run in `cwd` (a tmp folder: the default rejects file lands there, not in the repository)."""
    return subprocess.run([sys.executable, "-m", "chatmigrate", *args], capture_output=True, text=True,
                          env={**os.environ, "SLACK_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}, cwd=cwd, timeout=300)


def test_slack_export_migrates_every_byte_into_hub_store_and_mattermost_package(tmp_path: Path,
                                                                                server: Server) -> None:
    export, served = slack_export(tmp_path, server)
    download = ("-o", "download=true", "-o", "token_env=SLACK_TOKEN", "--files-allow-host", "127.0.0.1")
    hub = tmp_path / "hub.db"
    first = chatmigrate("migrate", str(export), "--to", f"sqlite:///{hub}", *download, "-q", cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr
    assert TOKEN not in first.stderr + first.stdout
    rows = sqlite3.connect(hub).execute("select source_id, sha256, props from cm_files").fetchall()
    stored = {sid: (digest, json.loads(props)) for sid, digest, props in rows if sid in served}
    assert set(stored) == set(served)
    for sid, (digest, props) in stored.items():
        assert props["bytes"] == PRESENT and digest == sha(served[sid])
        assert (tmp_path / "hub.db.files" / props["store"]).read_bytes() == served[sid]
    hits = dict(server.hits)

    out = tmp_path / "out.zip"
    package = chatmigrate("migrate", str(export), "--to", f"mattermost-import://{out}", *download, "-q",
                          cwd=tmp_path)
    assert package.returncode in (0, 1), package.stderr
    with zipfile.ZipFile(out) as z:
        digests = {sha(z.read(name)) for name in z.namelist() if name.startswith("data/")}
    assert {sha(data) for data in served.values()} <= digests
    assert len(server.hits) == len(hits)  # the package's own store: fetched once for it…

    again = chatmigrate("migrate", str(export), "--to", f"sqlite:///{hub}", *download, "-q", cwd=tmp_path)
    assert again.returncode in (0, 1), again.stderr
    assert server.hits == {k: v * 2 for k, v in hits.items()}  # …and a re-run of either fetches nothing more
    summary = chatmigrate("files", "--hub", f"sqlite:///{hub}", "--json", cwd=tmp_path)
    assert json.loads(summary.stdout)["files"]["present"]["files"] == len(served), summary.stderr


def test_validate_says_what_needs_a_download_without_fetching(tmp_path: Path, server: Server) -> None:
    export, served = slack_export(tmp_path, server)
    result = chatmigrate("validate", str(export), "--json", cwd=tmp_path)
    assert "files are only linked from the export" in result.stdout, result.stdout
    assert f"127.0.0.1 ({len(served)})" in result.stdout
    assert server.hits == {}


def test_a_killed_fetch_resumes_without_fetching_completed_files(tmp_path: Path, server: Server) -> None:
    export, served = slack_export(tmp_path, server)
    slow = next(iter(served))
    path = next(p for p in server.routes if f"/{slow}/" in p)
    data = served[slow]

    def stall(h: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:  # the first attempt never finishes: the run is killed while it waits
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:100])
            h.wfile.flush()
            time.sleep(30)
            return
        send(h, 200, data)

    server.routes[path] = stall
    args = [sys.executable, "-m", "chatmigrate", "files", str(export), "--files-dir", str(tmp_path / "store"),
            "-o", "token_env=SLACK_TOKEN", "-o", "download_workers=1", "--files-allow-host", "127.0.0.1",
            "--fetch", "-q"]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "SLACK_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while server.hits.get(path, 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = dict(server.hits)
    done = chatmigrate("files", str(export), "--files-dir", str(tmp_path / "store"), "-o", "token_env=SLACK_TOKEN",
                       "--files-allow-host", "127.0.0.1", "--fetch", "--json", cwd=tmp_path)
    result = json.loads(done.stdout)
    assert result["files"]["present"]["files"] == len(served), done.stderr
    for key, n in before.items():  # what the killed run completed is not fetched again
        assert server.hits[key] == (n + 1 if key == path or n == 0 else n), key
    assert not list((tmp_path / "store").glob(".part-*"))


def test_mattermost_api_files_are_downloaded_with_the_api_token(tmp_path: Path) -> None:
    """The Mattermost API source: GET /api/v4/files/{id} with its own token, into the store; open_file reads it."""
    from urllib.parse import urlparse

    from chatmigrate.extractors.mattermost_api import MattermostApi
    from chatmigrate.model import Message
    from tests.sources.servers.mattermost import SAMPLE, FakeServer
    from tests.sources.servers.mattermost import TOKEN as MM_TOKEN
    from tests.sources.servers.mattermost import handler_class as _handler

    state = FakeServer([json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()])
    fetched: list[str | None] = []

    class Handler(_handler(state)):  # type: ignore[misc]
        def do_GET(self) -> None:
            parts = urlparse(self.path).path.strip("/").split("/")
            if parts[:3] != ["api", "v4", "files"] or len(parts) != 4:
                return super().do_GET()
            fetched.append(self.headers.get("Authorization"))
            send(self, 200, hashlib.sha512(parts[3].encode()).digest() * 19 + b"x" * (1234 - 64 * 19))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        options = {"token": MM_TOKEN, "download": "true", "files_dir": str(tmp_path / "store")}
        source = MattermostApi(url, options)
        files = [f for item in source.records() if isinstance(item, Message) for f in item.files]
        assert files and all(f.props["bytes"] == PRESENT and f.size == 1234 for f in files)
        assert fetched and set(fetched) == {f"Bearer {MM_TOKEN}"}
        for file in files:
            handle = source.open_file(file)
            assert handle is not None
            with handle:
                assert sha(handle.read()) == file.sha256
        again = [f for item in MattermostApi(url, options).records() if isinstance(item, Message) for f in item.files]
        assert len(fetched) == len({f.id for f in files}) and {f.sha256 for f in again} == {f.sha256 for f in files}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_rocketchat_api_uploads_are_downloaded_with_its_auth_headers(tmp_path: Path) -> None:
    """The Rocket.Chat API source: /file-upload/<id>/<name> with X-Auth-Token/X-User-Id, into the store;
    open_file reads it; a second read fetches nothing."""
    from urllib.parse import parse_qs, urlsplit

    from chatmigrate.extractors.rocketchat_api import RocketchatApi
    from chatmigrate.model import Message
    from tests.sources.servers import rocketchat as rc

    state = rc.FakeRocketChat()
    state.rate_limit_next.clear()
    fetched: list[tuple[str | None, str | None]] = []
    # The size each message's file entry declares (the downloader checks it).
    sizes = {str(f["_id"]): f.get("size") for m in state.messages for f in (m.get("files") or ())
             if isinstance(f.get("size"), int)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/file-upload/"):
                fetched.append((self.headers.get("X-Auth-Token"), self.headers.get("X-User-Id")))
                size = sizes.get(parts.path.split("/")[2], 256)
                send(self, 200, (hashlib.sha512(parts.path.encode()).digest() * (size // 64 + 1))[:size])
                return
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            status, _, body = state.answer(parts.path.removeprefix("/api/v1/"), query)
            send(self, status, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        options = {"token": rc.TOKEN, "user_id": rc.USER_ID, "download": "true", "files_dir": str(tmp_path / "s")}
        source = RocketchatApi(url, options)
        files = [f for item in source.records() if isinstance(item, Message) for f in item.files]
        assert files and all(f.props["bytes"] == PRESENT for f in files), [f.props for f in files]
        assert fetched and set(fetched) == {(rc.TOKEN, rc.USER_ID)}
        for file in files:
            handle = source.open_file(file)
            assert handle is not None
            with handle:
                assert sha(handle.read()) == file.sha256
        count = len(fetched)
        again = [f for item in RocketchatApi(url, options).records() if isinstance(item, Message) for f in item.files]
        assert len(fetched) == count and {f.sha256 for f in again} == {f.sha256 for f in files}
    finally:
        httpd.shutdown()
        httpd.server_close()
