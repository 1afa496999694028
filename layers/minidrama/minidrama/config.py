"""App registry and deployment settings, stored in the lake under ``config/``.

``config/apps.json`` holds one entry per registered app: its timezone, reporting currency,
report recipients, report hour and reports, and the SHA-256 hash of its API key (never the key
itself). :func:`add_app` registers a new app and issues its key, :func:`update_app` changes
settings and never the key, :func:`rotate_key` issues a new key (the old one stops working).
``config/rates.json`` holds currency conversion rates (see :class:`Rates`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from minidrama.iso_codes import CURRENCY_CODES
from minidrama.lake import APPS_CONFIG_KEY, RATES_CONFIG_KEY, NotFoundError, Storage

__all__ = [
    "AppConfig",
    "ConfigError",
    "AppExists",
    "UnknownApp",
    "REPORT_KINDS",
    "DEFAULT_REPORT_HOUR",
    "METRICS_LEAD_HOURS",
    "add_app",
    "update_app",
    "rotate_key",
    "Rates",
    "APP_ID_PATTERN",
    "load_apps",
    "get_app",
    "app_or_default",
    "register_app",
    "hash_api_key",
    "api_key_matches",
    "load_rates",
    "save_rates",
    "validate_app_id",
    "validate_app_settings",
    "validate_recipients",
]

APP_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # use fullmatch
_EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


REPORT_KINDS = ("daily", "weekly", "monthly")
DEFAULT_REPORT_HOUR = 8
# The metrics of an app's day are computed this many hours before its reports are sent (local
# time), so late events of the night are in and the run has finished when the report runs.
METRICS_LEAD_HOURS = 2


class ConfigError(ValueError):
    """A setting is not valid; the message names it."""


class AppExists(ConfigError):
    """``apps add`` of an app that is already registered."""


class UnknownApp(ConfigError):
    """A command that changes an app names one that is not registered."""


@dataclass(frozen=True)
class AppConfig:
    app_id: str
    timezone: str = "UTC"
    currency: str = "USD"
    recipients: list[str] = field(default_factory=list)
    api_key_sha256: str | None = None
    report_hour: int = DEFAULT_REPORT_HOUR  # local hour (app's time zone) the reports are sent
    reports: list[str] = field(default_factory=lambda: ["daily"])  # of REPORT_KINDS

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def complete_days(self, now: datetime, count: int) -> list[date]:
        """The ``count`` calendar days in the app's time zone that ended before ``now``, oldest first."""
        today = now.astimezone(self.zone).date()
        return [today - timedelta(days=offset) for offset in range(count, 0, -1)]

    @property
    def metrics_hour(self) -> int:
        """The local hour the scheduled metrics job refreshes this app (before its report hour)."""
        return max(self.report_hour - METRICS_LEAD_HOURS, 0)

    def hour_began(self, hour: int, run_at: datetime, every: timedelta = timedelta(hours=1)) -> date | None:
        """The local day whose ``hour``:00 (app's time zone) fell in (``run_at`` - ``every``, ``run_at``].

        An hourly run gets each local day's hour exactly once: on the day clocks skip that hour
        (spring forward) the run after the gap has it, and on the day an hour repeats (fall back)
        only its first occurrence counts. Half- and quarter-hour zones work the same.
        """
        now_local = run_at.astimezone(self.zone).replace(tzinfo=None)
        before_local = (run_at - every).astimezone(self.zone).replace(tzinfo=None)
        for day in sorted({before_local.date(), now_local.date()}):
            if before_local < datetime.combine(day, time(hour)) <= now_local:
                return day
        return None

    def public(self) -> dict[str, object]:
        """The settings without the key hash (what `apps list` shows)."""
        data = asdict(self)
        data.pop("api_key_sha256")
        return data


def validate_app_settings(
    app_id: str,
    timezone: str,
    currency: str,
    recipients: list[str],
    report_hour: int = DEFAULT_REPORT_HOUR,
    reports: list[str] | None = None,
) -> None:
    validate_app_id(app_id)
    if type(report_hour) is not int or not 0 <= report_hour <= 23:
        raise ConfigError(f"report hour {report_hour!r} must be an hour of the day, 0 to 23")
    unknown = [kind for kind in reports or [] if kind not in REPORT_KINDS]
    if unknown:
        raise ConfigError(f"report {unknown[0]!r} is not one of {', '.join(REPORT_KINDS)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(f"timezone {timezone!r} is not an IANA time zone name") from error
    if currency not in CURRENCY_CODES:
        raise ConfigError(f"currency {currency!r} is not an ISO 4217 currency code such as USD")
    validate_recipients(recipients)


def validate_recipients(recipients: list[str]) -> None:
    for address in recipients:
        if not _EMAIL_PATTERN.fullmatch(address):
            raise ConfigError(f"recipient {address!r} is not an email address")


def validate_app_id(app_id: str) -> str:
    if not APP_ID_PATTERN.fullmatch(app_id):
        raise ConfigError(
            f"app_id {app_id!r} must be 1-64 characters of letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return app_id


def load_apps(storage: Storage) -> dict[str, AppConfig]:
    try:
        raw = json.loads(storage.get_bytes(APPS_CONFIG_KEY))
    except NotFoundError:
        return {}
    except ValueError as error:
        raise ConfigError(f"{APPS_CONFIG_KEY} in {storage.uri} is not valid JSON: {error}") from error
    return {app_id: AppConfig(app_id=app_id, **settings) for app_id, settings in raw["apps"].items()}


def get_app(storage: Storage, app_id: str) -> AppConfig | None:
    """The registered app, or None when it was never registered."""
    return load_apps(storage).get(app_id)


def app_or_default(storage: Storage, app_id: str) -> AppConfig:
    """The registered app, or default settings (UTC, USD, no recipients) for the CLI's trusted path."""
    return get_app(storage, validate_app_id(app_id)) or AppConfig(app_id=app_id)


def _save_apps(storage: Storage, apps: dict[str, AppConfig]) -> None:
    body = {
        "apps": {
            app_id: {k: v for k, v in asdict(app).items() if k != "app_id"}
            for app_id, app in sorted(apps.items())
        }
    }
    storage.put_bytes(APPS_CONFIG_KEY, json.dumps(body, indent=2).encode(), "application/json")


def _validated(app: AppConfig) -> AppConfig:
    validate_app_settings(
        app.app_id, app.timezone, app.currency, app.recipients, app.report_hour, app.reports
    )
    return app


def _new_key() -> tuple[str, str]:
    api_key = "mdk_" + secrets.token_urlsafe(32)
    return api_key, hash_api_key(api_key)


def add_app(
    storage: Storage,
    app_id: str,
    timezone: str | None = None,
    currency: str | None = None,
    recipients: list[str] | None = None,
    *,
    report_hour: int | None = None,
    reports: list[str] | None = None,
) -> tuple[AppConfig, str]:
    """Register a new app; returns its settings and its API key (shown once: only a hash is kept).

    Raises :class:`AppExists` for an app already registered (its settings and key stay as they are).
    """
    apps = load_apps(storage)
    if validate_app_id(app_id) in apps:
        raise AppExists(
            f"app {app_id!r} is already registered; change its settings with `minidrama apps set {app_id}`,"
            f" or issue a new key with `minidrama apps rotate-key {app_id}`"
        )
    api_key, key_hash = _new_key()
    app = _validated(
        AppConfig(
            app_id=app_id,
            timezone=timezone or "UTC",
            currency=(currency or "USD").upper(),
            recipients=list(recipients or []),
            api_key_sha256=key_hash,
            report_hour=DEFAULT_REPORT_HOUR if report_hour is None else report_hour,
            reports=list(reports) if reports is not None else ["daily"],
        )
    )
    apps[app_id] = app
    _save_apps(storage, apps)
    return app, api_key


def _registered(apps: dict[str, AppConfig], app_id: str) -> AppConfig:
    app = apps.get(validate_app_id(app_id))
    if app is None:
        raise UnknownApp(f"no app {app_id!r} is registered: `minidrama apps add {app_id}` first")
    return app


def update_app(
    storage: Storage,
    app_id: str,
    *,
    timezone: str | None = None,
    currency: str | None = None,
    recipients: list[str] | None = None,
    add_recipients: list[str] | None = None,
    remove_recipients: list[str] | None = None,
    report_hour: int | None = None,
    reports: list[str] | None = None,
) -> AppConfig:
    """Change the settings given of a registered app; the others and its API key stay as they are.

    ``recipients`` replaces the list; ``add_recipients`` / ``remove_recipients`` then edit it.
    """
    apps = load_apps(storage)
    current = _registered(apps, app_id)
    listed = list(recipients) if recipients is not None else list(current.recipients)
    listed += [address for address in add_recipients or [] if address not in listed]
    removed = set(remove_recipients or [])
    missing = sorted(removed - set(listed))
    if missing:
        raise ConfigError(f"{missing[0]!r} is not a recipient of {app_id!r}: {', '.join(listed) or 'none'}")
    updated = _validated(
        replace(
            current,
            timezone=timezone or current.timezone,
            currency=(currency or current.currency).upper(),
            recipients=[address for address in listed if address not in removed],
            report_hour=current.report_hour if report_hour is None else report_hour,
            reports=list(reports) if reports is not None else current.reports,
        )
    )
    apps[app_id] = updated
    _save_apps(storage, apps)
    return updated


def rotate_key(storage: Storage, app_id: str) -> tuple[AppConfig, str]:
    """A new API key for a registered app; the old one stops working."""
    apps = load_apps(storage)
    api_key, key_hash = _new_key()
    apps[app_id] = replace(_registered(apps, app_id), api_key_sha256=key_hash)
    _save_apps(storage, apps)
    return apps[app_id], api_key


def register_app(
    storage: Storage,
    app_id: str,
    timezone: str | None = None,
    currency: str | None = None,
    recipients: list[str] | None = None,
    reports: list[str] | None = None,
) -> tuple[AppConfig, str]:
    """Register an app, or update its settings and issue it a new key (the demo's and tests' setup).

    Operators use :func:`add_app`, :func:`update_app` and :func:`rotate_key`, which keep apart
    what changes settings from what changes the key.
    """
    if app_id not in load_apps(storage):
        return add_app(storage, app_id, timezone, currency, recipients, reports=reports)
    update_app(storage, app_id, timezone=timezone, currency=currency, recipients=recipients, reports=reports)
    return rotate_key(storage, app_id)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def api_key_matches(app: AppConfig, api_key: str) -> bool:
    """Constant-time comparison of a presented key against the stored hash."""
    if not app.api_key_sha256:
        return False
    return hmac.compare_digest(hash_api_key(api_key), app.api_key_sha256)


@dataclass(frozen=True)
class Rates:
    """Conversion rates: how many units of ``base`` one unit of each currency is worth.

    ``config/rates.json`` = ``{"base": "USD", "rates": {"EUR": "1.08", "JPY": "0.0067"}}``.
    The base itself always has rate 1. Converting between two listed currencies goes through
    the base. Rates are decimals, so converted amounts stay exact to the precision kept.
    """

    base: str = "USD"
    rates: dict[str, Decimal] = field(default_factory=dict)

    def rate(self, currency: str) -> Decimal | None:
        if currency == self.base:
            return Decimal(1)
        return self.rates.get(currency)

    def convert(self, amount: Decimal, currency: str, to_currency: str) -> Decimal | None:
        """``amount`` in ``to_currency``, or None when either currency has no rate."""
        if currency == to_currency:
            return amount
        source, target = self.rate(currency), self.rate(to_currency)
        if source is None or target is None:
            return None
        return amount * source / target


def load_rates(storage: Storage) -> Rates:
    try:
        raw = json.loads(storage.get_bytes(RATES_CONFIG_KEY))
    except NotFoundError:
        return Rates()
    except ValueError as error:
        raise ConfigError(f"{RATES_CONFIG_KEY} in {storage.uri} is not valid JSON: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("rates", {}), dict):
        raise ConfigError(
            f'{RATES_CONFIG_KEY} must be JSON like {{"base": "USD", "rates": {{"EUR": "1.08"}}}}'
        )
    rates = {}
    for currency, text in raw.get("rates", {}).items():
        try:
            rate = Decimal(str(text))
        except ArithmeticError:
            rate = Decimal("NaN")
        if not rate.is_finite() or rate <= 0:
            raise ConfigError(
                f"{RATES_CONFIG_KEY}: the rate of {currency} must be a positive number, got {text!r}"
            )
        rates[currency] = rate
    return Rates(base=raw.get("base", "USD"), rates=rates)


def save_rates(storage: Storage, rates: Rates) -> None:
    body = {"base": rates.base, "rates": {k: str(v) for k, v in sorted(rates.rates.items())}}
    storage.put_bytes(RATES_CONFIG_KEY, json.dumps(body, indent=2).encode(), "application/json")
