"""App registry and deployment settings, stored in the lake under ``config/``.

``config/apps.json`` holds one entry per registered app: its timezone, reporting currency,
report recipients and the SHA-256 hash of its API key (never the key itself).
``config/rates.json`` holds currency conversion rates (see :class:`Rates`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from minidrama.iso_codes import CURRENCY_CODES
from minidrama.lake import APPS_CONFIG_KEY, RATES_CONFIG_KEY, NotFoundError, Storage

__all__ = [
    "AppConfig",
    "ConfigError",
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


class ConfigError(ValueError):
    """A setting is not valid; the message names it."""


@dataclass(frozen=True)
class AppConfig:
    app_id: str
    timezone: str = "UTC"
    currency: str = "USD"
    recipients: list[str] = field(default_factory=list)
    api_key_sha256: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def complete_days(self, now: datetime, count: int) -> list[date]:
        """The ``count`` calendar days in the app's time zone that ended before ``now``, oldest first."""
        today = now.astimezone(self.zone).date()
        return [today - timedelta(days=offset) for offset in range(count, 0, -1)]

    def public(self) -> dict[str, object]:
        """The settings without the key hash (what `apps list` shows)."""
        data = asdict(self)
        data.pop("api_key_sha256")
        return data


def validate_app_settings(app_id: str, timezone: str, currency: str, recipients: list[str]) -> None:
    validate_app_id(app_id)
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


def register_app(
    storage: Storage,
    app_id: str,
    timezone: str | None = None,
    currency: str | None = None,
    recipients: list[str] | None = None,
) -> tuple[AppConfig, str]:
    """Register an app or update its settings; returns the settings and a new API key.

    Settings not given keep their current value (or the default for a new app). Every call
    issues a new key: only its hash is stored, so the key is shown once.
    """
    apps = load_apps(storage)
    current = apps.get(app_id) or AppConfig(app_id=app_id)
    updated = replace(
        current,
        timezone=timezone or current.timezone,
        currency=(currency or current.currency).upper(),
        recipients=list(recipients) if recipients is not None else current.recipients,
    )
    validate_app_settings(updated.app_id, updated.timezone, updated.currency, updated.recipients)
    api_key = "mdk_" + secrets.token_urlsafe(32)
    updated = replace(updated, api_key_sha256=hash_api_key(api_key))
    apps[app_id] = updated
    _save_apps(storage, apps)
    return updated, api_key


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
