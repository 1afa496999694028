"""Seeded traffic of a demo mini drama app: exactly what its SDKs would POST, day by day.

:func:`simulate` is pure: the same ``(start, days, seed, ...)`` always yields the same events,
with no global random state and no clock. It yields, for each simulated day, the events that
are *delivered* that day (late ones included), as SPEC section 4 JSON objects.

The shape of the traffic, chosen to make the daily report look like a real app's:

- the app launches on ``start``; new users arrive every day, a little more each day, more at
  the weekend; each user returns on day ``k`` after install with :func:`return_probability`
  (d1 ≈ 40 %, d7 ≈ 15 %, d30 ≈ 5 %) scaled by a personal engagement factor;
- a user is one os (iOS ≈ 45 %), one region, one device, TikTok version, gender and age group for
  life; clocks send RFC 3339 times either in UTC (``Z``) or with the device's local offset;
- 1-3 sessions a day, at the user's local evening more than at night; each session is an
  ``app_launch`` (≈ 2.5 % fail: ``success: false``, no session, often retried), page views down
  the funnel, and a ``session_end`` with the time spent (a few percent never send it);
- at the paywall after the last free episode, users with Beans unlock episodes (``redeem_order``),
  others sometimes recharge Beans with money (``recharge_order``, price points 0.99-19.99 USD):
  ≈ 3-5 % of active users pay on a day, some more than once;
- noise an ingestion service must handle: re-sent events (same ``event_id``), re-sent orders (same
  ``order_id``, new ``event_id``), sessions delivered the next day, a few custom events, and
  ≈ 0.5 % bad events (see :data:`BAD_EVENT_KINDS`) that validation must quarantine.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "simulate",
    "return_probability",
    "BAD_EVENT_KINDS",
    "is_intentionally_bad",
    "ENTRY_POINTS",
    "PRICE_POINTS",
]

Event = dict[str, Any]

# --- the shape of the traffic ----------------------------------------------------------------

# Day-k return probability after install (k = 1, 2, ...): anchors interpolated linearly in
# log(k) / log(p), the usual power-law-like decay of mobile retention.
_RETURN_ANCHORS: tuple[tuple[int, float], ...] = (
    (1, 0.41),
    (2, 0.31),
    (3, 0.26),
    (7, 0.155),
    (14, 0.095),
    (30, 0.052),
    (60, 0.032),
    (120, 0.02),
)

# Monday = 0. People install and watch more at the weekend.
_NEW_USERS_BY_WEEKDAY = (0.9, 0.88, 0.93, 0.98, 1.08, 1.2, 1.15)
_RETURNS_BY_WEEKDAY = (0.97, 0.96, 0.97, 0.99, 1.02, 1.06, 1.05)
_NEW_USER_GROWTH_PER_DAY = 0.012

# (region, weight, IANA zones of its users)
_REGIONS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("US", 34, ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")),
    ("PH", 12, ("Asia/Manila",)),
    ("ID", 11, ("Asia/Jakarta",)),
    ("BR", 9, ("America/Sao_Paulo",)),
    ("MX", 8, ("America/Mexico_City",)),
    ("GB", 6, ("Europe/London",)),
    ("CA", 5, ("America/Toronto", "America/Vancouver")),
    ("TH", 5, ("Asia/Bangkok",)),
    ("MY", 4, ("Asia/Kuala_Lumpur",)),
    ("AU", 3, ("Australia/Sydney",)),
    ("VN", 3, ("Asia/Ho_Chi_Minh",)),
)

# How likely a session starts in each local hour (0-23): evenings, then lunch, little at night.
_LOCAL_HOUR_WEIGHT = (
    0.35, 0.2, 0.1, 0.06, 0.05, 0.08, 0.2, 0.4, 0.5, 0.5, 0.55, 0.6,
    0.8, 0.75, 0.6, 0.6, 0.65, 0.75, 0.9, 1.0, 1.0, 0.95, 0.8, 0.55,
)  # fmt: skip

# (brand, weight, models); the os decides the list.
_IOS_DEVICES = (
    ("Apple", 1, ("iPhone 15", "iPhone 15 Pro", "iPhone 14", "iPhone 13", "iPhone 12", "iPhone SE")),
)
_ANDROID_DEVICES = (
    ("Samsung", 34, ("Galaxy A14", "Galaxy A54", "Galaxy S23", "Galaxy A34", "Galaxy S24 Ultra")),
    ("Xiaomi", 20, ("Redmi Note 12", "Redmi 12C", "Redmi Note 13 Pro", "Poco X5")),
    ("OPPO", 12, ("A78", "Reno 10", "A58")),
    ("vivo", 10, ("Y36", "V29", "Y17s")),
    ("Infinix", 8, ("Hot 30", "Note 30")),
    ("Motorola", 8, ("Moto G54", "Moto G84")),
    ("Google", 8, ("Pixel 7a", "Pixel 8")),
)
# TikTok versions by release: (version, day index of release relative to the simulation start).
_TIKTOK_VERSIONS = (("33.6.3", -120), ("33.8.4", -60), ("34.0.3", -20), ("34.1.2", 10), ("34.2.0", 28))

_GENDERS = (("female", 56), ("male", 38))  # the rest send none ("unknown" in the report)
_AGE_GROUPS = (("18-24", 24), ("25-34", 31), ("35-44", 21), ("45-54", 12), ("55+", 7))  # the rest: none

ENTRY_POINTS: tuple[str, ...] = ("feed", "search", "profile_page", "share_link", "ads", "notification")
# First launches come from discovery; returning users come back through their own paths.
_FIRST_ENTRY_WEIGHTS = (45, 8, 2, 15, 30, 0)
_RETURN_ENTRY_WEIGHTS = (34, 10, 14, 5, 9, 28)

# (price USD, beans, product_id, weight for a first / a repeat purchase)
PRICE_POINTS: tuple[tuple[str, int, str, int, int], ...] = (
    ("0.99", 100, "beans_100", 40, 20),
    ("4.99", 550, "beans_550", 35, 35),
    ("9.99", 1150, "beans_1150", 18, 30),
    ("19.99", 2400, "beans_2400", 7, 15),
)

_DRAMA_COUNT = 30
_FAILED_LAUNCH_RATE = 0.025
_RETRY_AFTER_FAILED_LAUNCH = 0.6
_MISSING_SESSION_END_RATE = 0.04
_MISSING_LAUNCH_MS_RATE = 0.05  # older SDKs do not measure it
_PAYER_SHARE = 0.28  # users willing to pay at all; the others rarely do
_LATE_SESSION_RATE = 0.006
_RESENT_EVENT_RATE = 0.003
_RESENT_ORDER_RATE = 0.03
_BAD_EVENT_RATE = 0.005
_CUSTOM_EVENT_RATE = 0.05

# What is wrong with each kind of bad event, and the share of bad events of that kind.
BAD_EVENT_KINDS: tuple[tuple[str, float], ...] = (
    ("missing_user_id", 0.4),
    ("bad_region", 0.3),
    ("negative_duration", 0.25),
    ("unknown_currency", 0.05),
)
_REGION_WEIGHTS = tuple(float(weight) for _region, weight, _zones in _REGIONS)
_IOS_WEIGHTS = tuple(float(weight) for _brand, weight, _models in _IOS_DEVICES)
_ANDROID_WEIGHTS = tuple(float(weight) for _brand, weight, _models in _ANDROID_DEVICES)
_FIRST_PRICE_WEIGHTS = tuple(float(point[3]) for point in PRICE_POINTS)
_REPEAT_PRICE_WEIGHTS = tuple(float(point[4]) for point in PRICE_POINTS)
_UUID_VERSION_4_BITS = (0x4 << 76) | (0x2 << 62)  # version nibble 4, RFC 4122 variant bits 10
_UUID_RANDOM_BITS = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_BAD_REGION = "XX1"
_UNKNOWN_CURRENCY = "ZZZ"


def return_probability(days_since_install: int) -> float:
    """The chance that a user of average engagement launches the app ``k`` days after install."""
    if days_since_install <= 0:
        return 1.0
    anchors = _RETURN_ANCHORS
    if days_since_install >= anchors[-1][0]:
        return anchors[-1][1]
    for (day_a, p_a), (day_b, p_b) in zip(anchors, anchors[1:], strict=False):
        if day_a <= days_since_install <= day_b:
            share = (math.log(days_since_install) - math.log(day_a)) / (math.log(day_b) - math.log(day_a))
            return math.exp(math.log(p_a) + share * (math.log(p_b) - math.log(p_a)))
    raise AssertionError("unreachable: the anchors cover every day")


def is_intentionally_bad(event: Event) -> bool:
    """Whether the simulator broke this event on purpose (validation must reject exactly these)."""
    properties = event.get("properties") or {}
    name = event.get("event_name")
    return (
        "user_id" not in event
        or event.get("region") == _BAD_REGION
        or (name == "session_end" and properties.get("duration_ms", 0) < 0)
        or (name == "recharge_order" and properties.get("currency") == _UNKNOWN_CURRENCY)
    )


# --- the simulation ----------------------------------------------------------------------------


@dataclass
class _User:
    user_id: str
    install_day: int
    os: str  # as the SDK sends it; the service lower-cases it
    region: str
    zone: ZoneInfo
    sends_local_offset: bool
    device_brand: str
    device_model: str
    tiktok_version: str
    gender: str | None
    age_group: str | None
    engagement: float
    willing_to_pay: bool
    drama: int
    episode: int
    beans: int = 0
    recharges: int = 0


@dataclass
class _Timed:
    """An event with its instant, kept apart so ordering never parses strings."""

    at: datetime
    event: Event
    user: _User
    late: bool = False


@dataclass
class _Drama:
    number: int
    first_locked_episode: int
    episodes: int
    beans_per_episode: int
    popularity: float


@dataclass
class _Simulation:
    rng: Random
    zone: ZoneInfo
    new_users_per_day: int
    users: list[_User] = field(default_factory=list)
    dramas: list[_Drama] = field(default_factory=list)
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    cumulative: dict[tuple[float, ...], list[float]] = field(default_factory=dict)

    # -- ids and times --

    def uuid(self) -> str:
        """A random (version 4) UUID drawn from the seeded generator."""
        value = self.rng.getrandbits(128) & _UUID_RANDOM_BITS | _UUID_VERSION_4_BITS
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def timestamp(self, user: _User, at: datetime) -> str:
        if user.sends_local_offset:
            return at.astimezone(user.zone).isoformat(timespec="milliseconds")
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def zone_named(self, name: str) -> ZoneInfo:
        if name not in self.zones:
            self.zones[name] = ZoneInfo(name)
        return self.zones[name]

    def pick(self, options: tuple[Any, ...], weights: tuple[float, ...]) -> Any:
        """One of ``options``, drawn with ``weights`` (cumulative sums kept: this runs a million times)."""
        cumulative = self.cumulative.get(weights)
        if cumulative is None:
            cumulative = self.cumulative[weights] = list(itertools.accumulate(weights))
        return options[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    # -- the catalogue and the people --

    def make_dramas(self) -> None:
        for number in range(1, _DRAMA_COUNT + 1):
            self.dramas.append(
                _Drama(
                    number=number,
                    first_locked_episode=self.rng.randint(6, 12),
                    episodes=self.rng.randint(50, 90),
                    beans_per_episode=self.rng.choice((50, 60, 60, 80, 90)),
                    popularity=1 / number**0.9,  # a few hits, a long tail
                )
            )

    def pick_drama(self) -> _Drama:
        return self.pick(tuple(self.dramas), tuple(drama.popularity for drama in self.dramas))

    def new_user(self, day_index: int) -> _User:
        rng = self.rng
        region, _weight, zones = self.pick(_REGIONS, _REGION_WEIGHTS)
        is_ios = rng.random() < (0.6 if region in {"US", "GB", "CA", "AU"} else 0.35)
        devices = _IOS_DEVICES if is_ios else _ANDROID_DEVICES
        brand, _weight, models = self.pick(devices, _IOS_WEIGHTS if is_ios else _ANDROID_WEIGHTS)
        released = [version for version, release in _TIKTOK_VERSIONS if release <= day_index]
        # Most people run one of the two latest versions released by the time they install.
        version_weights = tuple(1 if n < len(released) - 2 else 4 for n in range(len(released)))
        gender_roll = rng.random() * 100
        age_roll = rng.random() * 100
        drama = self.pick_drama()
        return _User(
            user_id=f"u_{rng.getrandbits(64):016x}",
            install_day=day_index,
            os="iOS" if is_ios else "android",
            region=region,
            zone=self.zone_named(rng.choice(zones)),
            sends_local_offset=rng.random() < 0.5,
            device_brand=brand,
            device_model=rng.choice(models),
            tiktok_version=self.pick(tuple(released), version_weights),
            gender=_weighted_value(_GENDERS, gender_roll),
            age_group=_weighted_value(_AGE_GROUPS, age_roll),
            engagement=rng.lognormvariate(-0.08, 0.4),  # mean ≈ 1
            willing_to_pay=rng.random() < _PAYER_SHARE,
            drama=drama.number,
            episode=0,
        )

    def returning_today(self, day_index: int, weekday: int) -> list[_User]:
        curve = [return_probability(k) * _RETURNS_BY_WEEKDAY[weekday] for k in range(day_index + 1)]
        returning = []
        for user in self.users:
            chance = curve[day_index - user.install_day]
            if self.rng.random() < min(0.95, chance * user.engagement):
                returning.append(user)
        return returning

    # -- one day --

    def day(self, day_index: int, day: date) -> list[_Timed]:
        rng = self.rng
        day_start = datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)
        day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone).astimezone(UTC)
        weekday = day.weekday()
        active = self.returning_today(day_index, weekday)
        arriving = round(
            self.new_users_per_day
            * (1 + _NEW_USER_GROWTH_PER_DAY) ** day_index
            * _NEW_USERS_BY_WEEKDAY[weekday]
            * rng.uniform(0.92, 1.08)
        )
        newcomers = [self.new_user(day_index) for _ in range(arriving)]
        self.users.extend(newcomers)
        timed: list[_Timed] = []
        for user in active + newcomers:
            sessions = self.pick((1, 2, 3), (0.6, 0.28, 0.12))
            starts = sorted(self.session_start(user, day_start, day_end) for _ in range(sessions))
            free_from = day_start
            for number, start in enumerate(starts):
                start = max(start, free_from)
                if start >= day_end:
                    break
                first_launch = user.install_day == day_index and number == 0
                session = self.session(user, start, first_launch)
                free_from = session[-1].at + timedelta(minutes=rng.uniform(5, 90))
                timed.extend(session)
        return timed

    def session_start(self, user: _User, day_start: datetime, day_end: datetime) -> datetime:
        """A start instant on the app's day, drawn by the user's local hour (rejection sampling)."""
        span = (day_end - day_start).total_seconds()
        while True:
            at = day_start + timedelta(seconds=self.rng.random() * span)
            if self.rng.random() < _LOCAL_HOUR_WEIGHT[at.astimezone(user.zone).hour]:
                return at

    def session(self, user: _User, start: datetime, first_launch: bool) -> list[_Timed]:
        rng = self.rng
        entry_weights = _FIRST_ENTRY_WEIGHTS if first_launch else _RETURN_ENTRY_WEIGHTS
        entry_point = self.pick(ENTRY_POINTS, entry_weights)
        events: list[_Timed] = []
        at = start
        while rng.random() < _FAILED_LAUNCH_RATE:
            events.append(self.launch(user, at, self.uuid(), entry_point, success=False))
            if rng.random() >= _RETRY_AFTER_FAILED_LAUNCH:
                return events
            at += timedelta(seconds=rng.uniform(3, 40))
        session_id = self.uuid()
        events.append(self.launch(user, at, session_id, entry_point, success=True))
        # Minutes, heavy-tailed: most sessions a few minutes, some an evening of binge-watching.
        duration_ms = min(int(rng.lognormvariate(math.log(6 * 60_000), 0.9)), 3 * 3_600_000)
        end = at + timedelta(milliseconds=duration_ms)
        steps = self.page_views_and_orders(user, session_id)
        # Spread the session's actions over its time, in order.
        offsets = sorted(rng.random() for _ in steps)
        for (name, properties), share in zip(steps, offsets, strict=True):
            moment = at + timedelta(milliseconds=1000 + share * max(duration_ms - 2000, 0))
            events.append(_Timed(moment, self.event(user, name, moment, session_id, properties), user))
        if rng.random() >= _MISSING_SESSION_END_RATE:
            events.append(
                _Timed(
                    end, self.event(user, "session_end", end, session_id, {"duration_ms": duration_ms}), user
                )
            )
        if rng.random() < _LATE_SESSION_RATE:
            for item in events:
                item.late = True
        return events

    def launch(self, user: _User, at: datetime, session_id: str, entry_point: str, success: bool) -> _Timed:
        properties: dict[str, Any] = {"entry_point": entry_point, "success": success}
        if success and self.rng.random() >= _MISSING_LAUNCH_MS_RATE:
            median_ms = 1100 if user.os == "iOS" else 1450
            if entry_point in {"share_link", "ads"}:
                median_ms += 250  # cold starts from outside TikTok's feed
            properties["launch_ms"] = int(self.rng.lognormvariate(math.log(median_ms), 0.32))
        properties.update(
            device_brand=user.device_brand, device_model=user.device_model, tiktok_version=user.tiktok_version
        )
        if user.gender:
            properties["gender"] = user.gender
        if user.age_group:
            properties["age_group"] = user.age_group
        return _Timed(at, self.event(user, "app_launch", at, session_id, properties), user)

    def event(
        self, user: _User, name: str, at: datetime, session_id: str, properties: dict[str, Any]
    ) -> Event:
        return {
            "event_id": self.uuid(),
            "event_name": name,
            "event_time": self.timestamp(user, at),
            "user_id": user.user_id,
            "session_id": session_id,
            "os": user.os,
            "region": user.region,
            "properties": properties,
        }

    def page_views_and_orders(self, user: _User, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        """What the user does in one session, down the funnel, as (event_name, properties)."""
        rng = self.rng
        steps: list[tuple[str, dict[str, Any]]] = []
        drama = self.dramas[user.drama - 1]
        drama_id = f"drama_{drama.number}"
        for _ in range(self.pick((1, 2, 3), (0.7, 0.22, 0.08))):
            steps.append(("entrance_exposure", {}))
        if rng.random() < _CUSTOM_EVENT_RATE:
            steps.append(("share_click", {"drama_id": drama_id}))
        if rng.random() >= 0.62:
            return steps
        steps.append(("entrance_click", {}))
        if rng.random() >= 0.88:
            return steps
        steps.append(("minis_visit", {"drama_id": drama_id}))
        if rng.random() >= 0.5:
            return steps
        # Free episodes first; the paywall comes after the last of them.
        last_free = drama.first_locked_episode - 1
        steps.append(("last_free_episode_watch", {"drama_id": drama_id, "episode": last_free}))
        user.episode = max(user.episode, last_free)
        if rng.random() >= 0.85:
            return steps
        steps.append(("third_party_payment_panel_show", {"drama_id": drama_id}))
        cost = drama.beans_per_episode
        if user.beans >= cost:
            if rng.random() >= 0.8:
                return steps
            steps.append(("third_party_payment_panel_click", {"drama_id": drama_id}))
        elif not self.pays(user, steps, drama_id, wants_to_pay=0.6 if user.willing_to_pay else 0.03):
            return steps
        # Binge: unlock episode after episode while the Beans last; a few buy more on the spot.
        while True:
            if user.beans < cost:
                steps.append(("third_party_payment_panel_show", {"drama_id": drama_id}))
                if not (user.willing_to_pay and self.pays(user, steps, drama_id, wants_to_pay=0.3)):
                    break
            user.episode += 1
            user.beans -= cost
            steps.append(
                (
                    "redeem_order",
                    {
                        "order_id": f"rdm_{rng.getrandbits(64):016x}",
                        "product_id": f"drama_{drama.number}_ep_{user.episode}",
                        "beans": cost,
                    },
                )
            )
            if user.episode >= drama.episodes:  # finished: the next session starts another drama
                user.drama, user.episode = self.pick_drama().number, 0
                break
            if rng.random() >= 0.65:
                break
        return steps

    def pays(
        self, user: _User, steps: list[tuple[str, dict[str, Any]]], drama_id: str, wants_to_pay: float
    ) -> bool:
        """From the unlock panel to TikTok's payment sheet; True when a recharge order went through."""
        rng = self.rng
        if rng.random() >= wants_to_pay:
            return False
        steps.append(("third_party_payment_panel_click", {"drama_id": drama_id}))
        if rng.random() >= 0.95:
            return False
        steps.append(("tiktok_payment_panel_show", {}))
        if rng.random() >= 0.8:
            return False
        steps.append(("tiktok_payment_panel_click", {}))
        if rng.random() >= 0.92:  # declined card, cancelled at the last step
            return False
        name, properties = self.recharge(repeat=user.recharges > 0)
        steps.append((name, properties))
        user.beans += properties["beans"]
        user.recharges += 1
        return True

    def recharge(self, repeat: bool) -> tuple[str, dict[str, Any]]:
        """A Beans pack bought with money; people who paid before buy bigger packs."""
        weights = _REPEAT_PRICE_WEIGHTS if repeat else _FIRST_PRICE_WEIGHTS
        price, beans, product_id, _first, _repeat = self.pick(PRICE_POINTS, weights)
        return (
            "recharge_order",
            {
                "order_id": f"ord_{self.rng.getrandbits(64):016x}",
                "amount": float(price),
                "currency": "USD",
                "beans": beans,
                "product_id": product_id,
            },
        )

    # -- noise --

    def add_noise(self, timed: list[_Timed], day_end: datetime) -> list[_Timed]:
        """Break a few events, re-send a few events and orders; returns the re-sent copies."""
        rng = self.rng
        originals = [item for item in timed if not item.late]
        kinds = tuple(kind for kind, _share in BAD_EVENT_KINDS)
        shares = tuple(share for _kind, share in BAD_EVENT_KINDS)
        by_name: dict[str, list[_Timed]] = {}
        for item in originals:
            by_name.setdefault(item.event["event_name"], []).append(item)
        for _ in range(round(len(originals) * _BAD_EVENT_RATE)):
            kind = self.pick(kinds, shares)
            if kind == "negative_duration":
                candidates = by_name.get("session_end", [])
            elif kind == "unknown_currency":
                candidates = by_name.get("recharge_order", [])
            else:
                candidates = originals
            if candidates:
                _break(rng.choice(candidates).event, kind, rng)
        copies: list[_Timed] = []
        for item in originals:
            name = item.event["event_name"]
            if rng.random() < _RESENT_EVENT_RATE:  # the SDK did not see the 202 and sends it again
                resent_at = item.at + timedelta(seconds=rng.uniform(1, 600))
                copies.append(_Timed(resent_at, copy.deepcopy(item.event), item.user))
            if name in {"recharge_order", "redeem_order"} and rng.random() < _RESENT_ORDER_RATE:
                # The app's own retry: a new event for the same order.
                again = copy.deepcopy(item.event)
                again["event_id"] = self.uuid()
                resent_at = item.at + timedelta(seconds=rng.uniform(2, 30))
                again["event_time"] = self.timestamp(item.user, resent_at)
                copies.append(_Timed(resent_at, again, item.user))
        for item in copies:
            item.late = item.at >= day_end
        return copies


def _weighted_value(table: tuple[tuple[str, int], ...], roll: float) -> str | None:
    for value, weight in table:
        if roll < weight:
            return value
        roll -= weight
    return None


def _break(event: Event, kind: str, rng: Random) -> None:
    if kind == "missing_user_id":
        event.pop("user_id", None)
    elif kind == "bad_region":
        event["region"] = _BAD_REGION
    elif kind == "negative_duration":
        event["properties"]["duration_ms"] = -rng.randint(1, 60_000)
    elif kind == "unknown_currency":
        event["properties"]["currency"] = _UNKNOWN_CURRENCY
    else:
        raise ValueError(f"unknown bad event kind {kind!r}")


def simulate(
    start: date,
    days: int,
    seed: int,
    *,
    timezone: str = "UTC",
    new_users_per_day: int = 220,
) -> Iterator[tuple[date, list[Event]]]:
    """Yield ``(day, events)`` for ``days`` days from ``start``: the events delivered that day.

    ``day`` is a calendar day in ``timezone`` (the app's); events happen during it, except late
    ones (delivered the day after they happened) and sessions that run past midnight. Events
    come in delivery order. ``new_users_per_day`` sets the scale: the app launches on ``start``
    and, with the default, has about 1,200-1,500 active users a day in its fifth week.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    if new_users_per_day < 1:
        raise ValueError(f"new_users_per_day must be at least 1, not {new_users_per_day}")
    simulation = _Simulation(rng=Random(seed), zone=ZoneInfo(timezone), new_users_per_day=new_users_per_day)
    simulation.make_dramas()
    carried: list[_Timed] = []
    for day_index in range(days):
        day = start + timedelta(days=day_index)
        day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=simulation.zone).astimezone(UTC)
        timed = simulation.day(day_index, day)
        copies = simulation.add_noise(timed, day_end)
        last_day = day_index == days - 1
        everything = sorted(timed + copies, key=lambda item: item.at)
        delivered = [item for item in everything if not item.late or last_day]
        # Offline devices deliver yesterday's sessions when they come back, early in the day.
        events = [item.event for item in carried] + [item.event for item in delivered]
        carried = [item for item in everything if item.late and not last_day]
        yield day, events
