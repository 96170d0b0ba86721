"""Download throughput of chatmigrate/files/download.py from a loopback server: MB/s and files/s on many
small files and a few large ones, with the peak RSS of the downloading process.

    python benchmarks/downloads.py                       # 10,000 × 4 KiB and 10 × 50 MiB
    python benchmarks/downloads.py --small 500 --large 2 --large-mb 5     # quick check

The server runs in its own process (so its memory and CPU are not the downloader's); every byte goes
through the real path: HTTP, streaming to a temp file, SHA-256, rename into the store, outcome recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatmigrate.files.download import PRESENT, Downloader, Job
from chatmigrate.targets._filestore import FileStore

_BLOCK = 1 << 20


def _body(name: str, size: int) -> bytes:
    """Deterministic bytes per file (distinct files, so the content-addressed store cannot dedupe them)."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _serve(port_queue: multiprocessing.Queue, small: int, large_mb: int) -> None:  # type: ignore[type-arg]
    large_block = _body("large", _BLOCK)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            kind, _, name = self.path.strip("/").partition("/")
            size = small if kind == "s" else large_mb * _BLOCK
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if kind == "s":
                self.wfile.write(_body(name, size))
                return
            # A large file is sent block by block: the server never holds it whole either.
            for _ in range(large_mb):
                self.wfile.write(large_block)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def _run(url: str, kind: str, count: int, size: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cm-dl-bench-") as folder:
        downloader = Downloader(FileStore(Path(folder)), allow_hosts=["127.0.0.1"], workers=workers)
        jobs = (Job(f"{kind}{i}", f"{url}/{kind}/{i}", size) for i in range(count))
        started = time.perf_counter()
        ok = sum(outcome.status == PRESENT for _, outcome in downloader.fetch_all(jobs))
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        refetched = sum(o.fetched > 0 for _, o in downloader.fetch_all(
            Job(f"{kind}{i}", f"{url}/{kind}/{i}", size) for i in range(count)))
        rerun = time.perf_counter() - again
    return {"files": count, "present": ok, "bytes": count * size, "seconds": round(seconds, 2),
            "MB_per_s": round(count * size / seconds / 1e6, 1), "files_per_s": round(count / seconds, 1),
            "rerun_seconds": round(rerun, 2), "rerun_fetched": refetched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000, help="number of small files")
    parser.add_argument("--small-bytes", type=int, default=4096)
    parser.add_argument("--large", type=int, default=10, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_serve, args=(queue, args.small_bytes, args.large_mb), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{queue.get(timeout=10)}"
    try:
        results = {
            "small": _run(url, "s", args.small, args.small_bytes, args.workers),
            "large": _run(url, "l", args.large, args.large_mb * _BLOCK, args.workers),
            "workers": args.workers,
            # ru_maxrss is KiB on Linux: the downloading process's peak over both runs.
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        server.terminate()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
