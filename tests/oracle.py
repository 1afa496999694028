"""An independent reference implementation of the metrics documents (SPEC sections 6 and 7).

Written from the SPEC text alone, in plain Python, as a test oracle for the DuckDB engine: it
takes the events exactly as an SDK sends them (SPEC section 4 JSON objects, assumed valid and
all in the reporting currency) and returns the document without ``generated_at``:

- ``reference_document(events, day)``: the daily document of section 6;
- ``reference_range_document(events, first, last)``: the range document of section 7 for
  R = [first, last]. Every metric is computed over the days of R (never summed from daily
  values), so a one-day range gives the daily values, except ``retention`` and ``iap_users.ltv``
  which have their own range forms (cohort rows per day of R with totals; LTV ``range``/``d0``/
  ``d7``/``d30`` of the new users of R).

Where the SPEC is silent it follows the README's "Choices where the contract is silent":

- the first copy of an ``event_id`` (in list order) stands; the tests only re-send identical
  copies, so which copy stands never changes a value;
- funnel stage 9 counts orders after both de-duplications;
- an entry point's average duration takes the ``session_end`` events of the day (range) in the
  segment whose ``session_id`` is that of a successful launch of the day (range) through the
  entry point, in any segment;
- a user's "latest launch" is the latest ``event_time``, a tie going to the larger ``event_id``;
- derived money (ARPPU, average GMV, LTV value) comes from the exact sum, rounded once, half up.

Readings of section 7.2 where the words leave room:

- "first ... ever" (first launch, first recharge) is taken over every event given, which for
  anyone active or paying in R is the same as over all history up to the range's last day;
  a user whose first recharge is after the last day "never recharged up to T";
- LTV ``range`` counts a cohort user's recharges on any day of R, even ones before that user's
  first launch; LTV dN counts those on the user's first-launch day C … C + N only;
- a retention row's dN uses the cohort of C in the segment and launches on C + N in any
  segment; the totals of dN add the rows whose dN is not null (a user in several cohorts counts
  once per cohort), and an empty total has rate ``null``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["reference_document", "reference_range_document", "FUNNEL_PAGE_VIEWS"]

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


def _days(first: date, last: date) -> list[date]:
    """The calendar days ``first`` … ``last``, in date order."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


class _Segment:
    """The events of one segment (all days), and its metrics over any range of days.

    Every metric takes the range ``first`` … ``last``; the daily document is the range of one day
    (``first == last``) except for ``retention`` and ``iap_users.ltv``, which have a daily and a
    range form.
    """

    def __init__(self, history: _History, matches: Callable[[Event], bool]) -> None:
        self.history = history
        self.events = [event for event in history.events if matches(event)]
        self.by_day: dict[date, list[Event]] = defaultdict(list)
        for event in self.events:
            self.by_day[event.day].append(event)

    def during(self, first: date, last: date, name: str | None = None) -> list[Event]:
        """The segment's events on days ``first`` … ``last`` (of one event name if given)."""
        return [
            event
            for day in _days(first, last)
            for event in self.by_day.get(day, [])
            if name is None or event.name == name
        ]

    def launches(self, first: date, last: date) -> list[Event]:
        return [event for event in self.during(first, last, "app_launch") if event.is_launch]

    def active_users(self, first: date, last: date) -> set[str]:
        return {event.user for event in self.launches(first, last)}

    def new_users(self, first: date, last: date) -> set[str]:
        return {
            user
            for user in self.active_users(first, last)
            if first <= self.history.first_launch[user] <= last
        }

    def metrics(self, day: date) -> dict[str, Any]:
        """The segment's ``M`` of the daily document of ``day`` (SPEC section 6)."""
        return self._metrics(
            day,
            day,
            retention={
                "new": self._daily_retention(day, self.new_users),
                "active": self._daily_retention(day, self.active_users),
            },
            ltv=self._daily_ltv(day),
        )

    def range_metrics(self, first: date, last: date) -> dict[str, Any]:
        """The segment's ``M`` of the range document of ``first`` … ``last`` (SPEC section 7)."""
        return self._metrics(
            first,
            last,
            retention={
                "new": self._range_retention(first, last, self.new_users),
                "active": self._range_retention(first, last, self.active_users),
            },
            ltv=self._range_ltv(first, last),
        )

    def _metrics(
        self, first: date, last: date, *, retention: dict[str, Any], ltv: dict[str, Any]
    ) -> dict[str, Any]:
        launches = self.launches(first, last)
        active = self.active_users(first, last)
        new = self.new_users(first, last)
        total = {event.user for event in self.events if event.is_launch and event.day <= last}
        launches_per_user = Counter(event.user for event in launches)
        session_ends = self.during(first, last, "session_end")
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
            "retention": retention,
            "profile": self._breakdowns(
                launches, new, active, {"gender": "gender", "age_group": "age_group", "region": None}
            ),
            "device": self._breakdowns(
                launches,
                new,
                active,
                {"brand": "device_brand", "model": "device_model", "tiktok_version": "tiktok_version"},
            ),
            "entry_points": self._entry_points(first, last, launches, new, session_ends),
            "funnel": self._funnel(first, last),
            "iap_users": self._iap_users(first, last, active, ltv),
            "iap_orders": self._iap_orders(first, last),
            "performance": self._performance(first, last),
        }

    def _daily_retention(self, day: date, cohort_of: Callable[[date, date], set[str]]) -> dict[str, Any]:
        """Section 6: for each N, the cohort of D − N and whether its members launched on D."""
        result = {}
        for offset in RETENTION_DAYS:
            cohort_date = day - timedelta(days=offset)
            cohort = cohort_of(cohort_date, cohort_date)
            retained = sum(1 for user in cohort if day in self.history.launch_days[user])
            result[f"d{offset}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": len(cohort),
                "retained": retained,
                "rate": _ratio(retained, len(cohort)),
            }
        return result

    def _range_retention(
        self, first: date, last: date, cohort_of: Callable[[date, date], set[str]]
    ) -> dict[str, Any]:
        """Section 7.2: one row per cohort day C of R (dN null when C + N > T), and the totals."""
        rows = []
        for cohort_date in _days(first, last):
            cohort = cohort_of(cohort_date, cohort_date)
            row: dict[str, Any] = {"cohort_date": cohort_date.isoformat(), "cohort_size": len(cohort)}
            for offset in RETENTION_DAYS:
                target = cohort_date + timedelta(days=offset)
                if target > last:
                    row[f"d{offset}"] = None
                    continue
                retained = sum(1 for user in cohort if target in self.history.launch_days[user])
                row[f"d{offset}"] = {"retained": retained, "rate": _ratio(retained, len(cohort))}
            rows.append(row)
        result: dict[str, Any] = {"cohorts": rows}
        for offset in RETENTION_DAYS:
            counted = [row for row in rows if row[f"d{offset}"] is not None]
            size = sum(row["cohort_size"] for row in counted)
            retained = sum(row[f"d{offset}"]["retained"] for row in counted)
            result[f"d{offset}"] = {"cohort_size": size, "retained": retained, "rate": _ratio(retained, size)}
        return result

    def _breakdowns(
        self, launches: list[Event], new: set[str], active: set[str], attributes: dict[str, str | None]
    ) -> dict[str, Any]:
        latest: dict[str, Event] = {}
        for event in launches:
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
        self, first: date, last: date, launches: list[Event], new: set[str], session_ends: list[Event]
    ) -> dict[str, Any]:
        # Sessions of successful launches in the range in any segment (README's choice).
        sessions_by_entry: dict[str, set[str | None]] = defaultdict(set)
        for event in self.history.events:
            if event.is_launch and first <= event.day <= last:
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

    def _funnel(self, first: date, last: date) -> dict[str, Any]:
        page_views = [len(self.during(first, last, stage)) for stage in FUNNEL_PAGE_VIEWS]
        funnels = {}
        for order_type, order_name in (("recharge", "recharge_order"), ("redeem", "redeem_order")):
            stages = [*FUNNEL_PAGE_VIEWS, order_name]
            views = [*page_views, len(self.during(first, last, order_name))]
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

    def _iap_users(self, first: date, last: date, active: set[str], ltv: dict[str, Any]) -> dict[str, Any]:
        recharges = self.during(first, last, "recharge_order")
        per_user = Counter(event.user for event in recharges)
        repeat = sum(1 for count in per_user.values() if count >= 2)
        gmv = sum((event.properties["amount"] for event in recharges), Decimal(0))
        return {
            "paying_users": len(per_user),
            "paying_user_rate": _ratio(len(per_user), len(active)),
            "repeat_paying_users": repeat,
            "repeat_paying_user_rate": _ratio(repeat, len(active)),
            "arppu": _money_ratio(gmv, len(per_user)),
            "ltv": ltv,
        }

    def _cohort_revenue(self, windows: dict[str, tuple[date, date]]) -> Decimal:
        """GMV of each user's recharge orders on the days of their window, in any segment."""
        return sum(
            (
                event.properties["amount"]
                for event in self.history.events
                if event.name == "recharge_order"
                and event.user in windows
                and windows[event.user][0] <= event.day <= windows[event.user][1]
            ),
            Decimal(0),
        )

    def _daily_ltv(self, day: date) -> dict[str, Any]:
        """Section 6: for each N, the new users of D − N and their recharges on D − N … D."""
        ltv = {}
        for offset in LTV_DAYS:
            cohort_date = day - timedelta(days=offset)
            cohort = self.new_users(cohort_date, cohort_date)
            revenue = self._cohort_revenue(dict.fromkeys(cohort, (cohort_date, day)))
            ltv[f"d{offset}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": len(cohort),
                "revenue": _money(revenue),
                "value": _money_ratio(revenue, len(cohort)),
            }
        return ltv

    def _range_ltv(self, first: date, last: date) -> dict[str, Any]:
        """Section 7.2: the new users of R; ``range`` over F … T, dN over each user's C … C + N."""

        def summary(windows: dict[str, tuple[date, date]]) -> dict[str, Any]:
            revenue = self._cohort_revenue(windows)
            return {
                "cohort_size": len(windows),
                "revenue": _money(revenue),
                "value": _money_ratio(revenue, len(windows)),
            }

        cohort = self.new_users(first, last)
        ltv = {"range": summary(dict.fromkeys(cohort, (first, last)))}
        for offset in LTV_DAYS:
            windows = {}
            for user in cohort:
                start = self.history.first_launch[user]
                end = start + timedelta(days=offset)
                if end <= last:
                    windows[user] = (start, end)
            ltv[f"d{offset}"] = summary(windows)
        return ltv

    def _iap_orders(self, first: date, last: date) -> dict[str, Any]:
        orders = [event for event in self.during(first, last) if event.name in ORDER_NAMES]
        first_recharge = self.history.first_recharge
        groups = {
            "all": orders,
            "new_payers": [
                e for e in orders if e.user in first_recharge and first <= first_recharge[e.user] <= last
            ],
            "returning_payers": [
                e for e in orders if e.user in first_recharge and first_recharge[e.user] < first
            ],
        }
        return {name: _order_summary(group) for name, group in groups.items()}

    def _performance(self, first: date, last: date) -> dict[str, Any]:
        attempts = self.during(first, last, "app_launch")
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


def _history(events: list[dict[str, Any]], timezone: str) -> _History:
    """The stored events (both de-duplications, amounts as exact decimals) and their history."""
    known = _known_events(events, ZoneInfo(timezone))
    stored = _orders_deduplicated(known)
    for event in stored:
        if event.name == "recharge_order":
            event.properties["amount"] = _amount(event.properties["amount"])
    return _History(stored)


def _segments(history: _History, first: date, last: date) -> dict[str, _Segment]:
    """``all``, then one ``os:`` and one ``region:`` segment per value seen on a day of the range."""
    # Segments come from the events that remain after both de-duplications: a later copy of an
    # order (new event_id, same order_id) is not an order any more and names no segment.
    in_range = [event for event in history.events if first <= event.day <= last]
    filters: dict[str, Callable[[Event], bool]] = {"all": lambda event: True}
    for os_name in sorted({event.os for event in in_range}):
        filters[f"os:{os_name}"] = _field_is("os", os_name)
    for region in sorted({event.region for event in in_range}):
        filters[f"region:{region}"] = _field_is("region", region)
    return {name: _Segment(history, matches) for name, matches in filters.items()}


def reference_document(
    events: list[dict[str, Any]],
    day: date,
    timezone: str = "UTC",
    currency: str = "USD",
    *,
    app_id: str = "app",
) -> dict[str, Any]:
    """The metrics document of ``day`` for ``events`` (as sent by an SDK), without ``generated_at``."""
    segments = _segments(_history(events, timezone), day, day)
    return {
        "schema_version": 1,
        "app_id": app_id,
        "date": day.isoformat(),
        "timezone": timezone,
        "currency": currency,
        "segments": {name: segment.metrics(day) for name, segment in segments.items()},
    }


def reference_range_document(
    events: list[dict[str, Any]],
    first: date,
    last: date,
    timezone: str = "UTC",
    currency: str = "USD",
    *,
    app_id: str = "app",
) -> dict[str, Any]:
    """The range document of ``first`` … ``last`` (SPEC section 7), without ``generated_at``."""
    if first > last:
        raise ValueError(f"the range {first} … {last} ends before it starts")
    segments = _segments(_history(events, timezone), first, last)
    return {
        "schema_version": 1,
        "kind": "range",
        "app_id": app_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": timezone,
        "currency": currency,
        "segments": {name: segment.range_metrics(first, last) for name, segment in segments.items()},
    }
