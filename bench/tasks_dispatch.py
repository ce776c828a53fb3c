"""The local Cloud Tasks emulator's own cost: dispatch latency and throughput; never fails.

Starts ``emulator.cloud_tasks`` on ephemeral loopback ports (no stack needed) and a
loopback HTTP target, then prints, against a baseline measured in the same run
(the same POST sent straight to the target):

* create-to-arrival latency of one task at a time (CreateTask over gRPC, then the
  dispatch), p50 and p99, as a ratio to the direct POST;
* throughput of ``--tasks`` tasks created by 20 client threads into a queue of
  unbounded rate, with a target answering at once and one taking 100 ms (then
  ``max_concurrent_dispatches`` bounds it: 20 in flight give at most 200/s).

    .venv/bin/python bench/tasks_dispatch.py [--tasks 500]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.stack import free_port  # noqa: E402

PARENT = "projects/bench/locations/here"


class Target(ThreadingHTTPServer):
    """Counts POSTs per path and when each arrived; ``/slow/...`` answers after 100 ms."""

    daemon_threads = True

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # see emulator/__init__.py

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with target.lock:
                    target.arrivals.setdefault(self.path, []).append(time.perf_counter())
                    target.lock.notify_all()
                if self.path.startswith("/slow/"):
                    time.sleep(0.1)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}"

    def wait(self, path: str, count: int, timeout: float = 120) -> list[float]:
        with self.lock:
            self.lock.wait_for(lambda: len(self.arrivals.get(path, [])) >= count, timeout)
            return list(self.arrivals.get(path, []))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    port, rest, certs = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        emulator = subprocess.Popen(
            [sys.executable, "-m", "emulator.cloud_tasks", "--port", str(port), "--rest-port", str(rest), "--certs-port", str(certs),
             "--project", "bench", "--location", "here", "--oidc-key-file", f"{tmp}/key.pem"],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"http://127.0.0.1:{certs}/oauth2/v1/certs", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
            run(client, Target(), args.tasks)
            channel.close()
        finally:
            emulator.terminate()
            emulator.wait(10)


def run(client: Any, target: Target, count: int) -> None:
    from google.cloud import tasks_v2

    def queue(concurrency: int) -> str:
        name = f"{PARENT}/queues/q-{uuid.uuid4().hex[:8]}"
        limits = {"max_dispatches_per_second": 500, "max_concurrent_dispatches": concurrency}
        client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name, rate_limits=limits))
        return name

    def create(name: str, url: str) -> None:
        client.create_task(parent=name, task={"http_request": {"url": url, "body": b"{}"}}, timeout=10)

    session = requests.Session()
    direct, dispatched = [], []
    latency_queue = queue(100)
    for _ in range(50):
        path = f"/one/{uuid.uuid4().hex}"
        started = time.perf_counter()
        session.post(target.base + path, data=b"{}", timeout=10)
        direct.append(time.perf_counter() - started)
        path = f"/one/{uuid.uuid4().hex}"
        started = time.perf_counter()
        create(latency_queue, target.base + path)
        dispatched.append(target.wait(path, 1)[0] - started)
    base = statistics.median(direct)
    print(f"Cloud Tasks emulator, dispatch (direct POST to the target: p50 {base * 1000:.1f} ms)")
    print(f"  create -> arrival, one at a time: p50 {statistics.median(dispatched) * 1000:.1f} ms "
          f"({statistics.median(dispatched) / base:.1f}x the direct POST), p99 {percentile(dispatched, 0.99) * 1000:.1f} ms")

    for label, prefix, concurrency in (("target answers at once", "/fast", 100), ("target takes 100 ms", "/slow", 20)):
        name, path = queue(concurrency), f"{prefix}/{uuid.uuid4().hex}"
        started = time.perf_counter()
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda _: create(name, target.base + path), range(count)))
        created = time.perf_counter() - started
        arrivals = target.wait(path, count)
        elapsed = max(arrivals) - started
        print(f"  {count} tasks from 20 clients, {label} (max_concurrent_dispatches {concurrency}): "
              f"created in {created:.2f} s, all dispatched in {elapsed:.2f} s = {count / elapsed:.0f} tasks/s")


if __name__ == "__main__":
    main()
