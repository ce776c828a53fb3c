"""The Firestore trigger path: create latency as the jobs collection grows, and write-to-event time.

Each step measures ``--creates`` sequential ``POST /api/images/generate`` and as many direct
Firestore writes to another collection (the baseline: what the emulator costs anyway), then
adds ``--step`` documents to the jobs collection (each one an event through the relay to
``webhook_trigger``) and waits for the relay to drain. Flat means the create p50 keeps its
ratio to the baseline's. Then the time from a write to its event at a loopback receiver
(emulator -> relay -> receiver). Prints figures, never fails on them; seeded documents are
deleted at the end.

    python bench/trigger_path.py [--steps 3] [--step 1000] [--creates 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.eventarc_relay import register_trigger  # noqa: E402
from emulator.stack import HOST, PORTS, Stack, port_in_use  # noqa: E402
from tests.loopback import Receiver  # noqa: E402

API = f"http://{HOST}:{PORTS['api']}"
RELAY = f"http://{HOST}:{PORTS['relay']}"
FIRESTORE = f"http://{HOST}:{PORTS['firestore']}"
PROJECT = "imagegen-local"
SEED_MARKER = "bench_trigger_path"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def p50_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def timed(action: Any, count: int) -> list[float]:
    return timed_pairs(action, lambda n: None, count)[0]


def timed_pairs(first: Any, second: Any, count: int) -> tuple[list[float], list[float]]:
    """Seconds of each call of ``first(n)`` and ``second(n)``, interleaved (same background load)."""
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(count):
        for action, out in zip((first, second), times):
            started = time.perf_counter()
            action(n)
            out.append(time.perf_counter() - started)
    return times


def create(session: requests.Session, prompt: str) -> str:
    response = session.post(f"{API}/api/images/generate", json={"prompt": prompt}, timeout=30)
    response.raise_for_status()
    return str(response.json()["job_id"])


def finished(session: requests.Session, jobs: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for job_id in jobs:
        while session.get(f"{API}/api/images/status/{job_id}", timeout=30).json()["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)


def relay_stats() -> dict[str, int]:
    return requests.get(f"{RELAY}/_relay/stats", timeout=5).json()


def relay_drained(received: int, timeout: float = 300) -> float:
    """Wait until the relay has received ``received`` events in all and sent them; returns the seconds."""
    started = time.monotonic()
    while (stats := relay_stats()).get("received", 0) < received or stats["pending"]:
        if time.monotonic() - started > timeout:
            print(f"  (relay not drained after {timeout:.0f} s: {stats})")
            break
        time.sleep(0.1)
    return time.monotonic() - started


def seed(db: Any, collection: str, count: int, start: int) -> None:
    for first in range(start, start + count, 500):
        batch = db.batch()
        for n in range(first, min(first + 500, start + count)):
            batch.set(db.collection(collection).document(f"seed_{n:06d}"), {"status": "COMPLETED", SEED_MARKER: True})
        batch.commit()


def unseed(db: Any, collection: str, count: int) -> None:
    for first in range(0, count, 500):
        batch = db.batch()
        for n in range(first, min(first + 500, count)):
            batch.delete(db.collection(collection).document(f"seed_{n:06d}"))
        batch.commit()


def bench_growth(db: Any, session: requests.Session, steps: int, step: int, creates: int) -> None:
    other = db.collection(f"bench_other_{uuid.uuid4().hex[:6]}")
    warm_up: list[str] = []
    timed_pairs(lambda n: warm_up.append(create(session, "Échauffement")), lambda n: other.document().set({}), 10)
    finished(session, warm_up)  # the emulator's JIT and first connections do not count
    rows = []
    for index in range(steps + 1):
        size = index * step
        jobs: list[str] = []
        api, base = timed_pairs(
            lambda n: jobs.append(create(session, f"Croissance {n}")),
            lambda n: other.document(f"d{size}_{n}").set({"n": n}),
            creates,
        )
        rows.append((size, p50_ms(api), p50_ms(base)))
        finished(session, jobs)  # the next step starts with an idle worker
        if index < steps:
            expected = relay_stats().get("received", 0) + step
            started = time.monotonic()
            seed(db, "image_jobs", step, size)
            drained = relay_drained(expected) + 0.0
            print(f"  seeded {step} job documents: their events through the relay in "
                  f"{time.monotonic() - started:.1f} s ({drained:.1f} s after the writes)")
    _, api0, base0 = rows[0]
    print(f"create latency vs jobs collection size ({creates} sequential creates per step, interleaved with "
          "writes to another collection):")  # fmt: skip
    for size, api, base in rows:
        print(f"  {size:>6} docs: create p50 {api:6.1f} ms ({api / api0:4.2f}x the first step), "
              f"other-collection write p50 {base:5.1f} ms ({base / base0:4.2f}x); "
              f"create / other write {api / base:4.1f}")  # fmt: skip
    expected = relay_stats().get("received", 0) + steps * step
    unseed(db, "image_jobs", steps * step)
    relay_drained(expected)


def bench_write_to_event(db: Any, writes: int) -> None:
    collection = f"bench_probe_{uuid.uuid4().hex[:6]}"
    trigger = f"bench-{uuid.uuid4().hex[:8]}"
    with Receiver() as receiver:
        url = receiver.url()
        requests.put(f"{RELAY}/_relay/routes/{trigger}", json={"url": url}, timeout=5).raise_for_status()
        register_trigger(FIRESTORE, PROJECT, trigger, f"{collection}/{{docId}}")
        ref = db.collection(collection).document("doc")
        latencies = []
        for n in range(writes):
            started = time.perf_counter()
            ref.set({"n": n})
            receiver.wait(url, n + 1, timeout=30)
            latencies.append(time.perf_counter() - started)
        requests.delete(f"{RELAY}/_relay/routes/{trigger}", timeout=5)
    write = timed(lambda n: db.collection(collection).document("plain").set({"n": n}), writes)
    print(f"write to its event at a receiver (emulator -> relay -> receiver), {writes} writes: "
          f"p50 {p50_ms(latencies):.1f} ms, max {max(latencies) * 1000:.1f} ms; "
          f"the write alone p50 {p50_ms(write):.1f} ms ({p50_ms(latencies) / p50_ms(write):.1f}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=50)
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    own = None
    if not port_in_use(PORTS["api"]):
        print("starting a local stack for the benchmark...")
        own = Stack(ROOT, log_dir=ROOT / ".stack" / "bench-logs").start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"{HOST}:{PORTS['firestore']}"
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    try:
        with requests.Session() as session:
            bench_growth(db, session, args.steps, args.step, args.creates)
        bench_write_to_event(db, args.writes)
    finally:
        if own is not None:
            own.stop()


if __name__ == "__main__":
    main()
