"""Read tokens (SPEC section 8): who may read an app's metrics, for how long.

A token is ``mdr1.<claims>.<signature>``: ``claims`` is the base64url (unpadded) of the compact
JSON ``{"app": APP_ID, "exp": UNIX_SECONDS}``, ``signature`` the base64url of HMAC-SHA256 over
``mdr1.<claims>`` with the deployment's read secret. Nothing about a token is stored: it is valid
while its signature matches the current secret and ``exp`` is in the future, for its app only.
Rotating the secret (:func:`new_secret`) revokes every token at once.

:func:`issue_token` and :func:`verify_token` are pure. Where the secret lives is the callers'
business: :class:`LakeSecret` keeps it in the lake's ``config/`` (a local lake), and
:class:`SecretsManagerSecret` reads it from AWS Secrets Manager (the deployed stack, which
generates it).

The ingest key never reads: it does not have the token's form, so it is refused as malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from minidrama.lake import NotFoundError, Storage

__all__ = [
    "READ_SECRET_KEY",
    "TOKEN_PREFIX",
    "DEFAULT_TOKEN_DAYS",
    "MAX_TOKEN_DAYS",
    "TokenError",
    "ReadToken",
    "SecretSource",
    "LakeSecret",
    "SecretsManagerSecret",
    "issue_token",
    "verify_token",
    "bearer_token",
    "new_secret",
]

READ_SECRET_KEY = "config/read-token-secret"
TOKEN_PREFIX = "mdr1"
DEFAULT_TOKEN_DAYS = 14
MAX_TOKEN_DAYS = 366
_MIN_SECRET_BYTES = 32


class TokenError(Exception):
    """A request's read credential is missing, malformed, expired or not for this app."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ReadToken:
    app_id: str
    token: str
    expires_at: datetime

    def public(self) -> dict[str, str]:
        """What ``minidrama apps token`` prints."""
        return {
            "app_id": self.app_id,
            "token": self.token,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(
        ch not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for ch in text
    ):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, signed_part: str) -> bytes:
    return hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest()


def issue_token(secret: bytes, app_id: str, expires_at: datetime) -> ReadToken:
    """A token for ``app_id`` valid until ``expires_at`` (kept to the second)."""
    expiry = int(expires_at.timestamp())
    claims = _b64(json.dumps({"app": app_id, "exp": expiry}, separators=(",", ":")).encode())
    signed_part = f"{TOKEN_PREFIX}.{claims}"
    token = f"{signed_part}.{_b64(_signature(secret, signed_part))}"
    return ReadToken(app_id, token, datetime.fromtimestamp(expiry, UTC))


def verify_token(secret: bytes, token: str, app_id: str, now: datetime) -> ReadToken:
    """The token's claims if it is valid for ``app_id`` at ``now``, else :class:`TokenError`.

    ``401 invalid_token`` for anything not signed by ``secret`` (malformed, tampered, another
    deployment's, or signed with a rotated-away secret), ``401 token_expired`` past its expiry,
    ``403 token_for_another_app`` for a valid token of another app.
    """
    invalid = TokenError(
        401, "invalid_token", "the read token is not valid: get a new one with `minidrama apps token APP`"
    )
    parts = token.split(".")
    # Header values may hold any Latin-1 text; a token is ASCII.
    if not token.isascii() or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise invalid
    # The signature's canonical text, not its decoded bytes: base64 decoding ignores the last
    # character's unused bits, which would let four spellings of one signature verify.
    expected = _b64(_signature(secret, f"{parts[0]}.{parts[1]}"))
    if not hmac.compare_digest(parts[2].encode("ascii"), expected.encode("ascii")):
        raise invalid
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        raise invalid from None
    if (
        not isinstance(claims, dict)
        or not isinstance(claims.get("app"), str)
        or type(claims.get("exp")) is not int
    ):
        raise invalid
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    if now >= expires_at:
        raise TokenError(
            401,
            "token_expired",
            f"the read token expired at {expires_at.isoformat().replace('+00:00', 'Z')}:"
            " get a new one with `minidrama apps token APP`",
        )
    if claims["app"] != app_id:
        raise TokenError(403, "token_for_another_app", f"the read token is not for app {app_id!r}")
    return ReadToken(app_id, token, expires_at)


def bearer_token(headers: Mapping[str, Any] | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, else ``401 missing_token``."""
    value = None
    for name, raw in (headers or {}).items():
        if name.lower() == "authorization":
            value = str(raw[0] if isinstance(raw, list | tuple) and raw else raw or "")
    if not value:
        raise TokenError(
            401,
            "missing_token",
            "missing the Authorization header: send `Authorization: Bearer <read token>`",
        )
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(
            401,
            "invalid_token",
            "the Authorization header must be `Bearer <read token>` (a read token, not an API key)",
        )
    return token.strip()


def new_secret() -> bytes:
    """A fresh signing secret (32 random bytes, as hex text)."""
    return secrets.token_hex(_MIN_SECRET_BYTES).encode("ascii")


class SecretSource(Protocol):
    """Where the deployment's read secret comes from."""

    def current(self) -> bytes: ...


class LakeSecret:
    """The read secret of a lake, in ``config/read-token-secret`` (created on first use when asked)."""

    def __init__(self, storage: Storage, *, create: bool = False) -> None:
        self.storage = storage
        self.create = create

    def current(self) -> bytes:
        try:
            secret = self.storage.get_bytes(READ_SECRET_KEY).strip()
        except NotFoundError:
            if not self.create:
                raise TokenError(
                    401,
                    "invalid_token",
                    "no read token was ever issued on this lake: `minidrama apps token APP`",
                ) from None
            secret = new_secret()
            # Two first uses at once: the first written wins, and both use it.
            if not self.storage.put_if_absent(READ_SECRET_KEY, secret, "text/plain"):
                secret = self.storage.get_bytes(READ_SECRET_KEY).strip()
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"{READ_SECRET_KEY} holds under {_MIN_SECRET_BYTES} bytes: not a secret")
        return secret

    def rotate(self) -> None:
        self.storage.put_bytes(READ_SECRET_KEY, new_secret(), "text/plain")


class SecretsManagerSecret:
    """The read secret in AWS Secrets Manager, re-read at most every ``ttl_seconds``.

    A rotation reaches a warm function within ``ttl_seconds``; until then it still accepts the
    tokens of the old secret.
    """

    def __init__(
        self,
        client: Any,
        secret_id: str,
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.secret_id = secret_id
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._value: bytes | None = None
        self._read_at = 0.0

    def current(self) -> bytes:
        now = self.clock()
        if self._value is None or now - self._read_at >= self.ttl_seconds:
            answer = self.client.get_secret_value(SecretId=self.secret_id)
            value = answer["SecretString"].encode("utf-8").strip()
            if len(value) < _MIN_SECRET_BYTES:
                raise ValueError(f"the secret {self.secret_id} holds under {_MIN_SECRET_BYTES} bytes")
            self._value, self._read_at = value, now
        return self._value

    def rotate(self) -> None:
        self.client.put_secret_value(SecretId=self.secret_id, SecretString=new_secret().decode("ascii"))
        self._value = None
