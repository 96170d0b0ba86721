"""Loopback HTTP servers the tests start on 127.0.0.1, each speaking one chat server's documented wire
format from the data of a sample in samples/ (the only mocks the house rules allow: SaaS APIs)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (path, query, request headers) → (status, JSON body, response headers)
Answer = Callable[[str, dict[str, str], dict[str, str]], tuple[int, Any, dict[str, str]]]


def json_handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    """A request handler answering GETs with `answer`'s JSON (a test may subclass it for more routes)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, body, headers = answer(url.path, query, dict(self.headers.items()))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(answer: Answer) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering GETs with `answer`; yields its base URL."""
    Handler = json_handler(answer)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
