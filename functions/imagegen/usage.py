"""Usage totals from the jobs themselves: Firestore aggregations, no counter documents.

A completed job carries, beside ``metadata.usage``, flat fields the
aggregations read (``sum`` cannot reach into maps)::

    usage_cost_usd, usage_images, usage_input_tokens, usage_output_tokens,
    usage_thinking_tokens, completed_day ("YYYY-MM-DD", UTC)

``GET /api/usage`` aggregates each day (``owner ==``, ``completed_day ==``:
index ``owner, completed_day, usage_*``; two queries, since Firestore takes at
most five aggregations per query), the days in parallel;
the per-key monthly budget sums ``usage_cost_usd`` over the key's jobs since
the first of the month (index ``api_key, completed_day``). Counting at
completion means jobs still running are not in the totals yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from imagegen.clients import database
from imagegen.config import load_settings

if TYPE_CHECKING:
    from imagegen.firestore.database import Aggregation
    from imagegen.firestore.queries import Query

COMPLETED_DAY = "completed_day"
API_KEY = "api_key"
_SUMS = {
    "images": "usage_images",
    "input_tokens": "usage_input_tokens",
    "output_tokens": "usage_output_tokens",
    "thinking_tokens": "usage_thinking_tokens",
    "cost_usd": "usage_cost_usd",
}
_PARALLEL_DAYS = 8


def completion_fields(job_usage: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The flat fields a completed job stores for the aggregations."""
    return {field: job_usage[key] for key, field in _SUMS.items()} | {
        COMPLETED_DAY: now.astimezone(UTC).date().isoformat()
    }


def _jobs() -> Query:
    return database().query(load_settings().jobs_collection)


def _aggregate(query: Query) -> dict[str, Any]:
    """count and the sums of ``query``: two round trips (Firestore allows 5 aggregations per query)."""
    count_and_cost: dict[str, Aggregation] = {
        "jobs": ("count", None), "images": ("sum", _SUMS["images"]), "cost_usd": ("sum", _SUMS["cost_usd"])
    }
    tokens: dict[str, Aggregation] = {
        key: ("sum", _SUMS[key]) for key in ("input_tokens", "output_tokens", "thinking_tokens")
    }
    values = database().aggregate(query, count_and_cost) | database().aggregate(query, tokens)
    totals = {key: int(values.get(key) or 0) for key in ("jobs", *_SUMS) if key != "cost_usd"}
    return totals | {"cost_usd": round(float(values.get("cost_usd") or 0), 6)}


def day_totals(owner: str, day: date) -> dict[str, Any]:
    """The owner's jobs completed on ``day`` (UTC): count, images, tokens, cost."""
    query = _jobs().where("owner", "==", owner).where(COMPLETED_DAY, "==", day.isoformat())
    return {"date": day.isoformat()} | _aggregate(query)


def daily_totals(owner: str, days: list[date]) -> list[dict[str, Any]]:
    """``day_totals`` for each day, in order (queried in parallel)."""
    with ThreadPoolExecutor(max_workers=min(_PARALLEL_DAYS, len(days)), thread_name_prefix="usage") as pool:
        return list(pool.map(lambda day: day_totals(owner, day), days))


def month_spent(key_hash: str, today: date) -> float:
    """USD the key's jobs cost since the first of ``today``'s month (UTC)."""
    query = _jobs().where(API_KEY, "==", key_hash).where(COMPLETED_DAY, ">=", today.replace(day=1).isoformat())
    return float(database().aggregate(query, {"cost": ("sum", "usage_cost_usd")})["cost"] or 0)
