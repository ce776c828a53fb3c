"""GET /api/usage: latency per range length, as a ratio to /health measured in the same run.

Each day of the range is aggregated by Firestore (two aggregation queries per
day, 8 days at a time), so the cost grows with the range, not with the jobs.
Runs ``--jobs`` one-image jobs first so the caller has usage today. Prints
figures, never fails on them.

    python bench/usage.py [--jobs 20] [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import API, bench_stack, create, drain, standin


def _median_ms(session: requests.Session, path: str, params: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(f"{API}{path}", params=params, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with bench_stack(), requests.Session() as session:
        standin(0)
        for _ in range(args.jobs):
            create(session)
        drain(session)
        today = datetime.now(UTC).date()
        health = _median_ms(session, "/health", {}, args.repeat)
        print(f"/health p50 {health:.1f} ms (baseline); {args.jobs} jobs completed today")
        for days in (1, 7, 31, 93):
            params = {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
            ms = _median_ms(session, "/api/usage", params, args.repeat)
            print(f"/api/usage {days:>2} day(s): p50 {ms:7.1f} ms  {ms / health:6.1f}x /health  {ms / days:5.1f} ms/day")


if __name__ == "__main__":
    main()
