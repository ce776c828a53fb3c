"""Push against polling: HTTP requests per job, and how late each client learns of COMPLETED.

Four clients follow each job at the same time: the event stream
(``/api/images/events``), the long-poll (``status?wait=30`` with ``If-None-Match``),
a poller every 2 s (the baseline), and the Python client's ``wait`` (clients/python:
the event stream, every request it sends counted by an httpx hook); each then has
the result (the stream's COMPLETED event carries it, the others GET ``result``). The moment COMPLETED
is written is the stream's event id (the document's Firestore update time, in
µs), so each client's lag is its wall clock at receipt minus that instant
(same machine, same clock). Prints figures, never fails on them.

    python bench/push.py [--jobs 5] [--latency-ms 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "clients" / "python" / "src")]

import httpx  # noqa: E402

from bench.run import API, bench_stack, standin  # noqa: E402
from imagegen_client import ImageGenClient  # noqa: E402

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
POLL_SECONDS = 2.0


@dataclass
class Follow:
    """What one client did for one job: requests sent, and when it saw the end."""

    requests: int = 0
    seen_at: float = 0.0  # time.time() when the terminal state (and result) arrived
    completed_at: float = 0.0  # only the stream knows it: the event id


def stream(job_id: str, out: Follow) -> None:
    out.requests += 1
    with requests.get(f"{API}/api/images/events/{job_id}", stream=True, timeout=(5, 60)) as response:
        event_id = 0
        for line in response.iter_lines(chunk_size=None, decode_unicode=True):
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: ") and json.loads(line[6:])["status"] in TERMINAL:
                out.seen_at, out.completed_at = time.time(), event_id / 1e6
                return


def long_poll(job_id: str, out: Follow) -> None:
    with requests.Session() as session:
        etag = ""
        while True:
            out.requests += 1
            headers = {"If-None-Match": etag} if etag else {}
            response = session.get(f"{API}/api/images/status/{job_id}?wait=30", headers=headers, timeout=60)
            etag = response.headers["ETag"]
            if response.json()["status"] in TERMINAL:
                break
        out.requests += 1
        session.get(f"{API}/api/images/result/{job_id}", timeout=30).raise_for_status()
        out.seen_at = time.time()


def poll(job_id: str, out: Follow) -> None:
    with requests.Session() as session:
        while True:
            out.requests += 1
            if session.get(f"{API}/api/images/status/{job_id}", timeout=30).json()["status"] in TERMINAL:
                break
            time.sleep(POLL_SECONDS)
        out.requests += 1
        session.get(f"{API}/api/images/result/{job_id}", timeout=30).raise_for_status()
        out.seen_at = time.time()


def python_client(job_id: str, out: Follow) -> None:
    def count(request: httpx.Request) -> None:
        out.requests += 1

    with ImageGenClient(API, http_client=httpx.Client(event_hooks={"request": [count]})) as client:
        client.wait(job_id)
    out.seen_at = time.time()


CLIENTS: dict[str, Callable[[str, Follow], None]] = {
    "event stream": stream,
    "long-poll 30 s": long_poll,
    "poll every 2 s": poll,
    "imagegen_client": python_client,
}


def follow_one_job(latency_ms: int) -> dict[str, Follow]:
    standin(latency_ms)
    response = requests.post(f"{API}/api/images/generate", json={"prompt": "Banc d'essai push"}, timeout=30)
    response.raise_for_status()
    job_id = response.json()["job_id"]
    follows = {name: Follow() for name in CLIENTS}
    threads = [threading.Thread(target=CLIENTS[name], args=(job_id, follows[name])) for name in CLIENTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return follows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=2000)
    args = parser.parse_args()
    with bench_stack():
        try:
            runs = [follow_one_job(args.latency_ms) for _ in range(args.jobs)]
        finally:
            standin(0)
    baseline = "poll every 2 s"
    count = {name: statistics.mean(run[name].requests for run in runs) for name in CLIENTS}
    lag = {
        name: [(run[name].seen_at - run["event stream"].completed_at) * 1000 for run in runs] for name in CLIENTS
    }
    print(f"{args.jobs} jobs of 1 image, stand-in latency {args.latency_ms} ms; {len(CLIENTS)} clients per job")
    print(f"{'client':<16} {'requests/job':>12} {'vs poll':>8} {'lag p50 ms':>11} {'lag max ms':>11} {'vs poll':>8}")
    for name in CLIENTS:
        p50 = statistics.median(lag[name])
        print(
            f"{name:<16} {count[name]:>12.1f} {count[name] / count[baseline]:>8.2f} "
            f"{p50:>11.0f} {max(lag[name]):>11.0f} {p50 / max(statistics.median(lag[baseline]), 1):>8.2f}"
        )
    print("lag: from COMPLETED written in Firestore to the client holding the result")


if __name__ == "__main__":
    main()
