"""Messages per second into 蓝莺IM: a generated Slack export (benchmarks/generate.py) migrated into the
loopback 蓝莺IM server of the tests (tests/lanying_server.py) with `?rate=0` (unpaced), then run again.

The server runs in this process (a thread): it shares the interpreter with the client, so the numbers
are a floor for the client's own cost, not a measure of a real 蓝莺IM server (which paces itself with
the network: at 20 ms a round trip, one sender makes at most ~50 messages/s; `?rate=` caps it anyway).

    python benchmarks/lanying.py --messages 5000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import generate  # noqa: E402

from chatmigrate import pipeline  # noqa: E402
from chatmigrate.extractors import detect  # noqa: E402
from chatmigrate.targets import target_for  # noqa: E402
from tests.lanying_server import ADMIN_TOKEN, running, target_url  # noqa: E402


def _migrate(url: str, export: Path) -> tuple[float, dict]:
    target = target_for(url)
    started = time.perf_counter()
    try:
        result = pipeline.run(detect(str(export))(str(export), {}), target,
                              pipeline.RunOptions("migrate", str(export), progress=False))
    finally:
        target.close()
    return time.perf_counter() - started, result.target_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ["CHATMIGRATE_LANYING_TOKEN"] = ADMIN_TOKEN
    with tempfile.TemporaryDirectory(prefix="lanying-bench-") as work, running() as server:
        export = Path(work) / "slack.zip"
        generate.generate("slack", args.messages, args.seed, export)
        url = target_url(server, Path(work) / "hub.db")
        first_wall, first = _migrate(url, export)
        again_wall, again = _migrate(url, export)
        out = {"messages": args.messages, "parts_sent": first.get("parts_sent", 0),
               "messages_sent": first.get("messages_sent", 0), "api_calls": first["api_calls"],
               "send_seconds": first["seconds"], "send_messages_per_second": first["messages_per_second"],
               "run_seconds": round(first_wall, 2), "rerun_seconds": round(again_wall, 2),
               "rerun_messages_sent": again.get("messages_sent", 0), "rerun_api_calls": again["api_calls"],
               "server_messages": len(server.state.messages)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
