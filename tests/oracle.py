"""An independent reference implementation of the daily metrics document (SPEC section 6).

Written from the SPEC text alone, in plain Python, as a test oracle for the DuckDB engine: it
takes the events exactly as an SDK sends them (SPEC section 4 JSON objects, assumed valid and
all in the reporting currency) and returns the document without ``generated_at``.

Where the SPEC is silent it follows the README's "Choices where the contract is silent":

- the first copy of an ``event_id`` (in list order) stands; the tests only re-send identical
  copies, so which copy stands never changes a value;
- funnel stage 9 counts orders after both de-duplications;
- an entry point's average duration takes the ``session_end`` events on D in the segment whose
  ``session_id`` is that of a successful launch on D through the entry point, in any segment;
- a user's "latest launch" is the latest ``event_time``, a tie going to the larger ``event_id``;
- derived money (ARPPU, average GMV, LTV value) comes from the exact sum, rounded once, half up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["reference_document", "FUNNEL_PAGE_VIEWS"]

FUNNEL_PAGE_VIEWS = (
    "entrance_exposure",
    "entrance_click",
    "minis_visit",
    "last_free_episode_watch",
    "third_party_payment_panel_show",
    "third_party_payment_panel_click",
    "tiktok_payment_panel_show",
    "tiktok_payment_panel_click",
)
ORDER_NAMES = ("recharge_order", "redeem_order")
KNOWN_NAMES = frozenset(("app_launch", "session_end", *ORDER_NAMES, *FUNNEL_PAGE_VIEWS))
RETENTION_DAYS = (1, 7, 14, 30)
LTV_DAYS = (0, 7, 30)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Event:
    """One stored event: normalised as ingestion stores it, with its calendar day in the app's zone."""

    event_id: str
    name: str
    time: datetime
    day: date
    user: str
    session: str | None
    os: str
    region: str
    properties: dict[str, Any]

    @property
    def is_launch(self) -> bool:
        """A successful ``app_launch`` (``success`` true or absent)."""
        return self.name == "app_launch" and self.properties.get("success", True) is not False


def _parse(raw: dict[str, Any], zone: ZoneInfo) -> Event:
    text = raw["event_time"]
    time = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    return Event(
        event_id=raw["event_id"],
        name=raw["event_name"],
        time=time,
        day=time.astimezone(zone).date(),
        user=raw["user_id"],
        session=raw.get("session_id"),
        os=raw["os"].lower(),
        region=raw["region"].upper(),
        properties=dict(raw.get("properties") or {}),
    )


def _known_events(events: Iterable[dict[str, Any]], zone: ZoneInfo) -> list[Event]:
    """Events of known names after the de-duplication by ``event_id`` (the first copy stands)."""
    by_id: dict[str, Event] = {}
    for raw in events:
        if raw["event_id"] not in by_id:
            by_id[raw["event_id"]] = _parse(raw, zone)
    return [event for event in by_id.values() if event.name in KNOWN_NAMES]


def _orders_deduplicated(known: list[Event]) -> list[Event]:
    """``known`` with only the earliest copy of each order (per order event name and ``order_id``)."""
    earliest_order: dict[tuple[str, str], Event] = {}
    for event in known:
        if event.name in ORDER_NAMES:
            key = (event.name, event.properties["order_id"])
            standing = earliest_order.get(key)
            if standing is None or event.time < standing.time:
                earliest_order[key] = event
    standing_orders = {id(event) for event in earliest_order.values()}
    return [event for event in known if event.name not in ORDER_NAMES or id(event) in standing_orders]


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _money_ratio(numerator: Decimal, denominator: int) -> float | None:
    return None if denominator == 0 else _money(numerator / Decimal(denominator))


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


class _History:
    """Facts over all segments and days: first launch and first recharge day of each user."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.first_launch: dict[str, date] = {}
        self.first_recharge: dict[str, date] = {}
        self.launch_days: dict[str, set[date]] = defaultdict(set)
        for event in events:
            if event.is_launch:
                self.launch_days[event.user].add(event.day)
                self._keep_earliest(self.first_launch, event)
            elif event.name == "recharge_order":
                self._keep_earliest(self.first_recharge, event)

    @staticmethod
    def _keep_earliest(firsts: dict[str, date], event: Event) -> None:
        if event.user not in firsts or event.day < firsts[event.user]:
            firsts[event.user] = event.day


class _Segment:
    """The events of one segment (all days), and the metrics of that segment on any day."""

    def __init__(self, history: _History, matches: Callable[[Event], bool]) -> None:
        self.history = history
        self.events = [event for event in history.events if matches(event)]

    def on(self, day: date, name: str | None = None) -> list[Event]:
        return [event for event in self.events if event.day == day and (name is None or event.name == name)]

    def launches(self, day: date) -> list[Event]:
        return [event for event in self.on(day, "app_launch") if event.is_launch]

    def active_users(self, day: date) -> set[str]:
        return {event.user for event in self.launches(day)}

    def new_users(self, day: date) -> set[str]:
        return {user for user in self.active_users(day) if self.history.first_launch[user] == day}

    def metrics(self, day: date) -> dict[str, Any]:
        launches = self.launches(day)
        active = self.active_users(day)
        new = self.new_users(day)
        total = {event.user for event in self.events if event.is_launch and event.day <= day}
        launches_per_user = Counter(event.user for event in launches)
        session_ends = self.on(day, "session_end")
        user_duration = dict.fromkeys(active, 0)
        for event in session_ends:
            if event.user in user_duration:
                user_duration[event.user] += event.properties["duration_ms"]
        median_per_user = _median(list(user_duration.values()))
        dashboard = {
            "total_users": len(total),
            "active_users": len(active),
            "new_users": len(new),
            "median_duration_per_user_ms": median_per_user,
        }
        behavior = {
            "total_users": len(total),
            "new_users": len(new),
            "repeat_users": sum(1 for count in launches_per_user.values() if count >= 2),
            "visit_count": len(launches),
            "average_visit_count": _ratio(len(launches), len(active)),
            "median_duration_per_user_ms": median_per_user,
            "median_duration_per_session_ms": _median(
                [event.properties["duration_ms"] for event in session_ends]
            ),
            "active_users": len(active),
            "effectively_active_users": sum(1 for duration in user_duration.values() if duration > 0),
        }
        return {
            "dashboard": dashboard,
            "behavior": behavior,
            "retention": {
                "new": self._retention(day, self.new_users),
                "active": self._retention(day, self.active_users),
            },
            "profile": self._breakdowns(
                day, new, active, {"gender": "gender", "age_group": "age_group", "region": None}
            ),
            "device": self._breakdowns(
                day,
                new,
                active,
                {"brand": "device_brand", "model": "device_model", "tiktok_version": "tiktok_version"},
            ),
            "entry_points": self._entry_points(day, launches, new, session_ends),
            "funnel": self._funnel(day),
            "iap_users": self._iap_users(day, active),
            "iap_orders": self._iap_orders(day),
            "performance": self._performance(day),
        }

    def _retention(self, day: date, cohort_of: Callable[[date], set[str]]) -> dict[str, Any]:
        result = {}
        for offset in RETENTION_DAYS:
            cohort_date = day - timedelta(days=offset)
            cohort = cohort_of(cohort_date)
            retained = sum(1 for user in cohort if day in self.history.launch_days[user])
            result[f"d{offset}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": len(cohort),
                "retained": retained,
                "rate": _ratio(retained, len(cohort)),
            }
        return result

    def _breakdowns(
        self, day: date, new: set[str], active: set[str], attributes: dict[str, str | None]
    ) -> dict[str, Any]:
        latest: dict[str, Event] = {}
        for event in self.launches(day):
            current = latest.get(event.user)
            if current is None or (event.time, event.event_id) > (current.time, current.event_id):
                latest[event.user] = event

        def value(event: Event, prop: str | None) -> str:
            if prop is None:
                return event.region
            found = event.properties.get(prop)
            return "unknown" if found is None else found

        return {
            group: {
                key: dict(Counter(value(latest[user], prop) for user in users))
                for key, prop in attributes.items()
            }
            for group, users in (("new", new), ("active", active))
        }

    def _entry_points(
        self, day: date, launches: list[Event], new: set[str], session_ends: list[Event]
    ) -> dict[str, Any]:
        # Sessions of successful launches on D in any segment (README's choice).
        sessions_by_entry: dict[str, set[str | None]] = defaultdict(set)
        for event in self.history.events:
            if event.is_launch and event.day == day:
                sessions_by_entry[event.properties["entry_point"]].add(event.session)
        result = {}
        for entry_point in sorted({event.properties["entry_point"] for event in launches}):
            through = [event for event in launches if event.properties["entry_point"] == entry_point]
            users = {event.user for event in through}
            durations = [
                event.properties["duration_ms"]
                for event in session_ends
                if event.session in sessions_by_entry[entry_point]
            ]
            result[entry_point] = {
                "active_users": len(users),
                "new_users": len(users & new),
                "launch_sessions": len(through),
                "average_duration_per_session_ms": _mean(durations),
            }
        return result

    def _funnel(self, day: date) -> dict[str, Any]:
        page_views = [len(self.on(day, stage)) for stage in FUNNEL_PAGE_VIEWS]
        funnels = {}
        for order_type, order_name in (("recharge", "recharge_order"), ("redeem", "redeem_order")):
            stages = [*FUNNEL_PAGE_VIEWS, order_name]
            views = [*page_views, len(self.on(day, order_name))]
            funnels[order_type] = [
                {
                    "stage": stage,
                    "pv": pv,
                    "rate_from_previous": None if index == 0 else _ratio(pv, views[index - 1]),
                    "rate_from_first": _ratio(pv, views[0]),
                }
                for index, (stage, pv) in enumerate(zip(stages, views, strict=True))
            ]
        return funnels

    def _iap_users(self, day: date, active: set[str]) -> dict[str, Any]:
        recharges = self.on(day, "recharge_order")
        per_user = Counter(event.user for event in recharges)
        repeat = sum(1 for count in per_user.values() if count >= 2)
        gmv = sum((event.properties["amount"] for event in recharges), Decimal(0))
        ltv = {}
        for offset in LTV_DAYS:
            cohort_date = day - timedelta(days=offset)
            cohort = self.new_users(cohort_date)
            revenue = sum(
                (
                    event.properties["amount"]
                    for event in self.history.events
                    if event.name == "recharge_order"
                    and event.user in cohort
                    and cohort_date <= event.day <= day
                ),
                Decimal(0),
            )
            ltv[f"d{offset}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": len(cohort),
                "revenue": _money(revenue),
                "value": _money_ratio(revenue, len(cohort)),
            }
        return {
            "paying_users": len(per_user),
            "paying_user_rate": _ratio(len(per_user), len(active)),
            "repeat_paying_users": repeat,
            "repeat_paying_user_rate": _ratio(repeat, len(active)),
            "arppu": _money_ratio(gmv, len(per_user)),
            "ltv": ltv,
        }

    def _iap_orders(self, day: date) -> dict[str, Any]:
        orders = [event for event in self.on(day) if event.name in ORDER_NAMES]
        first_recharge = self.history.first_recharge
        groups = {
            "all": orders,
            "new_payers": [e for e in orders if e.user in first_recharge and first_recharge[e.user] == day],
            "returning_payers": [
                e for e in orders if e.user in first_recharge and first_recharge[e.user] < day
            ],
        }
        return {name: _order_summary(group) for name, group in groups.items()}

    def _performance(self, day: date) -> dict[str, Any]:
        attempts = self.on(day, "app_launch")
        launches = [event for event in attempts if event.is_launch]
        timed = [
            event.properties["launch_ms"]
            for event in launches
            if event.properties.get("launch_ms") is not None
        ]
        return {
            "loading_success_rate": _ratio(len(launches), len(attempts)),
            "average_launch_ms": _mean(timed),
        }


def _order_summary(orders: list[Event]) -> dict[str, Any]:
    recharges = [event for event in orders if event.name == "recharge_order"]
    redeems = [event for event in orders if event.name == "redeem_order"]
    gmv = sum((event.properties["amount"] for event in recharges), Decimal(0))
    products = Counter(event.properties["product_id"] for event in redeems)
    top = sorted(products.items(), key=lambda item: (-item[1], item[0]))[:10]
    return {
        "gmv": _money(gmv),
        "average_gmv": _money_ratio(gmv, len(recharges)),
        "recharge_orders": len(recharges),
        "redeem_orders": len(redeems),
        "top_redeemed_products": [{"product_id": product, "orders": count} for product, count in top],
    }


def _field_is(field: str, value: str) -> Callable[[Event], bool]:
    return lambda event: getattr(event, field) == value


def _amount(value: Any) -> Decimal:
    # JSON numbers arrive as Decimal, int or float; a float is taken as its shortest repr, as sent.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def reference_document(
    events: list[dict[str, Any]],
    day: date,
    timezone: str = "UTC",
    currency: str = "USD",
    *,
    app_id: str = "app",
) -> dict[str, Any]:
    """The metrics document of ``day`` for ``events`` (as sent by an SDK), without ``generated_at``."""
    zone = ZoneInfo(timezone)
    known = _known_events(events, zone)
    stored = _orders_deduplicated(known)
    for event in stored:
        if event.name == "recharge_order":
            event.properties["amount"] = _amount(event.properties["amount"])
    history = _History(stored)
    # Segments come from the events that remain after both de-duplications: a later copy of an
    # order (new event_id, same order_id) is not an order any more and names no segment.
    on_day = [event for event in stored if event.day == day]
    segments: dict[str, Callable[[Event], bool]] = {"all": lambda event: True}
    for os_name in sorted({event.os for event in on_day}):
        segments[f"os:{os_name}"] = _field_is("os", os_name)
    for region in sorted({event.region for event in on_day}):
        segments[f"region:{region}"] = _field_is("region", region)
    return {
        "schema_version": 1,
        "app_id": app_id,
        "date": day.isoformat(),
        "timezone": timezone,
        "currency": currency,
        "segments": {name: _Segment(history, matches).metrics(day) for name, matches in segments.items()},
    }
