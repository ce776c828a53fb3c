"""Load benchmark: many jobs from concurrent clients; prints figures, never fails on them.

Uses the stack already running on 9006 (``make up``) or starts its own, like
``bench/run.py`` (whose helpers it imports). Each client has its own HTTP
session, creates its share of the jobs (1 image, 512x512), then polls them in
creation order, one request every ``--poll-interval`` s (waiting stops when no
job has ended for ``--stall`` s: the local queue may give up on a job). Printed: throughput,
create latency p50/p99, end-to-end p50/p99 (create sent -> poll sees the end,
so within one poll interval), final statuses and HTTP status codes.

The local Cloud Tasks emulator dispatches one task at a time per queue: the
figures measure the per-job cost of the whole local pipeline (and end-to-end
times are mostly queueing), not what Cloud Tasks does in parallel in production.
``tests/integration/test_load.py`` runs this at 200 jobs and asserts on it.

    python bench/load.py [--jobs 1000] [--clients 20] [--latency-ms 20] [--poll-interval 0.5]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import API, ROOT, percentile, standin
from emulator.stack import PORTS, Stack, port_in_use

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
GOAL_JOBS_PER_SECOND = 5.0
JOB_FIELDS = {"num_images": 1, "size": "512x512"}


@dataclass
class LoadResult:
    jobs: int
    clients: int
    elapsed: float = 0.0
    job_ids: list[str] = field(default_factory=list)
    create_seconds: list[float] = field(default_factory=list)
    end_to_end: dict[str, float] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)
    """Job id -> the terminal status its client saw (jobs missing here never finished)."""
    codes: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    """(``create`` | ``poll``, HTTP status) -> count; status 0 is a connection error."""
    started: float = field(default_factory=time.monotonic)
    last_end: float = 0.0
    """When the last job was seen ending (``time.monotonic``)."""
    last_progress: float = field(default_factory=time.monotonic)
    """When a job was last created or seen ending (``time.monotonic``)."""


class _Client:
    def __init__(self, result: LoadResult, lock: threading.Lock, base_url: str) -> None:
        self.result, self.lock, self.base_url = result, lock, base_url
        self.session = requests.Session()
        self.sent: dict[str, float] = {}

    def _record(self, kind: str, status: int) -> None:
        with self.lock:
            self.result.codes[(kind, status)] += 1

    def create(self, count: int, prefix: str) -> None:
        for n in range(count):
            started = time.perf_counter()
            try:
                response = self.session.post(
                    f"{self.base_url}/api/images/generate",
                    json={"prompt": f"{prefix} {n}"} | JOB_FIELDS,
                    timeout=60,
                )
            except requests.RequestException:
                self._record("create", 0)
                continue
            took = time.perf_counter() - started
            self._record("create", response.status_code)
            if response.status_code == 202:
                job_id = response.json()["job_id"]
                self.sent[job_id] = started
                with self.lock:
                    self.result.job_ids.append(job_id)
                    self.result.create_seconds.append(took)
                    self.result.last_progress = time.monotonic()

    def _finished(self, job_id: str) -> bool:
        """Poll one job once; True (and its figures recorded) when it has ended."""
        try:
            response = self.session.get(f"{self.base_url}/api/images/status/{job_id}", timeout=60)
        except requests.RequestException:
            self._record("poll", 0)
            return False
        self._record("poll", response.status_code)
        status = response.json().get("status") if response.status_code == 200 else None
        if status not in TERMINAL:
            return False
        with self.lock:
            self.result.final[job_id] = status
            self.result.end_to_end[job_id] = time.perf_counter() - self.sent[job_id]
            self.result.last_end = self.result.last_progress = time.monotonic()
        return True

    def wait(self, deadline: float, poll_interval: float, stall: float) -> None:
        """Poll the oldest unfinished job (jobs end in creation order), one request per interval.

        Every 4th round the next job is polled too: if it has ended while the
        oldest has not, the oldest is late (retried, stuck) and goes to the back,
        so it does not hide the others.
        """
        pending = list(self.sent)
        rounds = 0
        while pending and time.monotonic() < deadline:
            if time.monotonic() - self.result.last_progress > stall:
                return  # no job has ended for a while anywhere: stuck, stop waiting
            while pending and self._finished(pending[0]):
                pending.pop(0)
            rounds += 1
            if rounds % 4 == 0 and len(pending) > 1 and self._finished(pending[1]):
                pending.pop(1)
                pending.append(pending.pop(0))
                continue
            if pending:
                time.sleep(poll_interval)

    def run(self, count: int, prefix: str, deadline: float, poll_interval: float, stall: float) -> None:
        try:
            self.create(count, prefix)
            self.wait(deadline, poll_interval, stall)
        finally:
            self.session.close()


def run_load(
    jobs: int,
    clients: int,
    *,
    poll_interval: float = 0.5,
    timeout: float = 1800.0,
    stall: float = 120.0,
    base_url: str = API,
    prefix: str = "Charge",
) -> LoadResult:
    """Create ``jobs`` jobs from ``clients`` threads and wait for them all.

    Waiting stops after ``timeout`` s, or once no job has ended for ``stall`` s
    (a job the local queue gave up on would otherwise hold the run to the end).
    """
    result = LoadResult(jobs=jobs, clients=clients)
    lock = threading.Lock()
    shares = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
    deadline = result.started + timeout
    with ThreadPoolExecutor(clients, thread_name_prefix="load-client") as pool:
        futures = [
            pool.submit(
                _Client(result, lock, base_url).run, share, f"{prefix} c{i}", deadline, poll_interval, stall
            )
            for i, share in enumerate(shares)
        ]
        for future in futures:
            future.result()
    result.elapsed = time.monotonic() - result.started
    return result


def report(result: LoadResult, latency_ms: int | None = None) -> str:
    statuses = collections.Counter(result.final.values())
    others = {status: n for status, n in statuses.items() if status != "COMPLETED"}
    unfinished = len(result.job_ids) - len(result.final)
    server_errors = sum(n for (_, status), n in result.codes.items() if status >= 500)
    connection_errors = sum(n for (_, status), n in result.codes.items() if status == 0)
    creates = [s * 1000 for s in result.create_seconds]
    e2e = list(result.end_to_end.values())
    stand_in = f", stand-in latency {latency_ms} ms" if latency_ms is not None else ""
    busy = (result.last_end - result.started) if result.final else result.elapsed
    rate = len(result.final) / busy if busy else 0.0
    lost = result.jobs - statuses["COMPLETED"]
    lines = [
        f"load: {result.jobs} jobs from {result.clients} clients{stand_in}: {len(result.final)} ended "
        f"{busy:.1f} s after the first request, {rate:.2f} jobs/s "
        f"(goal >= {GOAL_JOBS_PER_SECOND:.0f}: {rate / GOAL_JOBS_PER_SECOND:.2f}x of it; run {result.elapsed:.1f} s)",
        f"  lost (not COMPLETED): {lost} (goal 0)",
        f"  create latency: p50 {percentile(creates, 50):.1f} ms, p99 {percentile(creates, 99):.1f} ms"
        if creates else "  create latency: no job created",
        f"  end to end: p50 {percentile(e2e, 50):.1f} s, p99 {percentile(e2e, 99):.1f} s"
        if e2e else "  end to end: no job finished",
        f"  jobs: COMPLETED {statuses['COMPLETED']}, other {sum(others.values())}"
        f"{f' {others}' if others else ''}, unfinished {unfinished}, "
        f"not created {result.jobs - len(result.job_ids)}",
        f"  HTTP: 5xx {server_errors}, connection errors {connection_errors}, "
        f"all {dict(sorted(result.codes.items()))}",
    ]
    return "\n".join(lines)


def _health_rate(clients: int, seconds: float = 2.0) -> float:
    """Requests/s the API answers on ``/health`` right now: how busy the machine is."""
    deadline = time.monotonic() + seconds

    def hammer(_: int) -> int:
        done = 0
        with requests.Session() as session:
            while time.monotonic() < deadline:
                done += session.get(f"{API}/health", timeout=10).status_code == 200
        return done

    with ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(hammer, range(clients))) / seconds


def _queue_rate() -> str:
    """``max_dispatches_per_second`` of the stack's jobs queue, as its Tasks emulator reports it."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    stack = Stack(ROOT)
    env = stack.env
    channel = grpc.insecure_channel(stack.urls["tasks"])  # gRPC (CLOUD_TASKS_EMULATOR_HOST is the REST API)
    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    name = client.queue_path(env["GOOGLE_CLOUD_PROJECT"], env["TASKS_LOCATION"], env["TASKS_QUEUE"])
    try:
        return f"{client.get_queue(name=name, timeout=10).rate_limits.max_dispatches_per_second:g}"
    except Exception as exc:
        return f"? ({type(exc).__name__})"
    finally:
        channel.close()


def _backend() -> str:
    try:
        return str(requests.get(f"{API}/health", timeout=10).json().get("gemini_backend"))
    except (requests.RequestException, ValueError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=20, help="Gemini stand-in latency per call")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between a client's polls")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for all jobs")
    parser.add_argument("--stall", type=float, default=120.0, help="stop waiting when no job ended for this long")
    args = parser.parse_args()
    own = None
    if not port_in_use(PORTS["api"]):
        print("starting a local stack for the benchmark...", flush=True)
        own = Stack(ROOT, log_dir=ROOT / ".stack" / "bench-logs").start()
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"same-run reference: GET /health from {args.clients} clients, {_health_rate(args.clients):.0f} req/s",
              flush=True)
        print(f"the jobs queue dispatches at most {_queue_rate()} tasks/s (infra/, or TASKS_QUEUE_OVERRIDES): "
              "the ceiling of the figure below", flush=True)
        if _backend() != "stand-in":
            print(f"the API's Gemini backend is {_backend()!r}, not the stand-in: refusing to send "
                  f"{args.jobs} jobs to it")
            return
        standin(args.latency_ms)
        print(f"{args.jobs} jobs, {args.clients} clients, stand-in latency {args.latency_ms} ms ...", flush=True)
        result = run_load(
            args.jobs, args.clients, poll_interval=args.poll_interval, timeout=args.timeout, stall=args.stall
        )
        print(report(result, args.latency_ms))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        standin(0)
        if own is not None:
            own.stop()


if __name__ == "__main__":
    main()
