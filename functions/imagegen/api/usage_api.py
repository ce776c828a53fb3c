"""``GET /api/usage`` and the per-key monthly budget, both read from the jobs' usage fields.

The budget refusal is **402 Payment Required**, not 429: 429 means "slow
down, retry after a while" (the per-minute rate limit, with ``Retry-After``),
and HTTP clients and SDKs retry it by themselves; a spent budget does not come
back by retrying, only next month or by raising it (``keys set-budget``).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import flask

from imagegen import job_store, usage
from imagegen.api import keys
from imagegen.api.auth import Principal
from imagegen.http import error_response, json_response
from imagegen.models import UsageDay, UsageResponse, UsageTotals

MAX_DAYS = 93
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(request: flask.Request, name: str, default: date) -> date | str:
    """The parameter as a date, its default when absent, or the French error."""
    text = request.args.get(name)
    if text is None:
        return default
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    return f"{name} doit être une date AAAA-MM-JJ valide"


def usage_report(request: flask.Request, principal: Principal) -> flask.Response:
    """The caller's totals per day (UTC) of ``from``..``to`` (default: this month to today)."""
    today = job_store.utcnow().date()
    end = _day(request, "to", today)
    if isinstance(end, str):
        return error_response(400, end, [{"field": "to", "message": end}])
    start = _day(request, "from", end.replace(day=1))
    if isinstance(start, str):
        return error_response(400, start, [{"field": "from", "message": start}])
    if start > end:
        return error_response(400, "from doit être antérieure ou égale à to")
    count = (end - start).days + 1
    if count > MAX_DAYS:
        return error_response(400, f"La période ne doit pas dépasser {MAX_DAYS} jours")
    days = usage.daily_totals(principal.owner, [start + timedelta(days=n) for n in range(count)])
    totals = {key: sum(day[key] for day in days) for key in UsageTotals.model_fields}
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    return json_response(
        UsageResponse(
            from_date=start.isoformat(),
            to_date=end.isoformat(),
            days=[UsageDay(**day) for day in days],
            total=UsageTotals(**totals),
        )
    )


def budget_refusal(principal: Principal) -> flask.Response | None:
    """402 when the caller's API key has a monthly budget and this month's jobs spent it."""
    if not principal.key_hash:
        return None
    budget = keys.monthly_budget(principal.key_hash)
    if budget is None:
        return None
    today = job_store.utcnow().date()
    spent = usage.month_spent(principal.key_hash, today)
    if spent < budget:
        return None
    next_month = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    message = (
        f"Budget mensuel de cette clé API épuisé ({spent:.4f} USD dépensés sur {budget:.4f} USD) : "
        f"nouvelles tâches refusées jusqu'au {next_month.isoformat()}"
    )
    return error_response(402, message)
