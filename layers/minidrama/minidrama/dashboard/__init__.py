"""The dashboard (SPEC section 8): one static page and its files, served beside the read API.

The page (``static/index.html``) is the same for every app: its script reads the app from the
URL path and the read token from the URL fragment (``#token=...``, which browsers never send to
a server), then asks the read API for documents. Its files are served from ``/v1/dashboard/NAME``
with a content hash in their URL, so they can be cached for good; the page itself is not cached.

Charts are Vega-Lite (the grammar of the report's charts), drawn by Vega and vega-embed
vendored in ``static/vendor`` at pinned versions with their licences (``packages.json`` holds
each file's SHA-256). Vega evaluates its expressions with vega-interpreter, so the
Content-Security-Policy needs no ``unsafe-eval``: the page runs only its own scripts and
connects only to its own origin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources

from minidrama.tokens import DEFAULT_TOKEN_DAYS, SecretSource, issue_token

__all__ = [
    "LOCAL_API_URL",
    "CONTENT_SECURITY_POLICY",
    "StaticFile",
    "ASSETS",
    "DashboardLink",
    "DashboardLinks",
    "dashboard_url",
    "page",
    "asset",
]

LOCAL_API_URL = "http://127.0.0.1:8080"  # where `minidrama serve` listens by default
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# The files the page may load, by the name it uses, with their content type.
ASSETS: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "format.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "vega.min.js": "text/javascript; charset=utf-8",
    "vega-lite.min.js": "text/javascript; charset=utf-8",
    "vega-embed.min.js": "text/javascript; charset=utf-8",
    "vega-interpreter.min.js": "text/javascript; charset=utf-8",
}
_VENDORED = {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-interpreter.min.js"}

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str
    headers: tuple[tuple[str, str], ...]


def _read(name: str) -> str:
    folder = resources.files("minidrama.dashboard").joinpath("static")
    path = folder.joinpath("vendor", name) if name in _VENDORED else folder.joinpath(name)
    return path.read_text(encoding="utf-8")


def _version(name: str) -> str:
    return hashlib.sha256(_read(name).encode("utf-8")).hexdigest()[:12]


@cache
def page() -> StaticFile:
    """The dashboard page, its file URLs carrying each file's content hash."""
    html = _read("index.html")
    for name in ASSETS:
        html = html.replace(f'"../../dashboard/{name}"', f'"../../dashboard/{name}?v={_version(name)}"')
    return StaticFile(html, "text/html; charset=utf-8", tuple(_PAGE_HEADERS.items()))


@cache
def asset(name: str) -> StaticFile | None:
    """A file of the page by name, or None for a name the page does not use."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return None
    headers = (
        ("Cache-Control", "public, max-age=31536000, immutable"),
        ("X-Content-Type-Options", "nosniff"),
    )
    return StaticFile(_read(name), content_type, headers)


def dashboard_url(
    base_url: str, app_id: str, token: str, first: date | None = None, last: date | None = None
) -> str:
    """The dashboard of ``app_id`` at ``base_url``, on [first, last] if given, ``token`` in the fragment."""
    query = f"?from={first.isoformat()}&to={last.isoformat()}" if first and last else ""
    return f"{base_url.rstrip('/')}/v1/apps/{app_id}/dashboard{query}#token={token}"


@dataclass(frozen=True)
class DashboardLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class DashboardLinks:
    """Makes the dashboard links of reports: the API's base URL, the read secret, days of validity."""

    base_url: str
    secret: SecretSource
    days: int = DEFAULT_TOKEN_DAYS

    def for_day(self, app_id: str, day: date, now: datetime) -> DashboardLink:
        """A link to the dashboard on ``day`` alone, with a new token valid ``days`` days from ``now``."""
        return self.for_range(app_id, day, day, now)

    def for_range(self, app_id: str, first: date, last: date, now: datetime) -> DashboardLink:
        """A link to the dashboard on ``first`` … ``last`` (a weekly or monthly report's days)."""
        token = issue_token(self.secret.current(), app_id, now + timedelta(days=self.days))
        return DashboardLink(dashboard_url(self.base_url, app_id, token.token, first, last), token.expires_at)
