"""Read tokens: what verifies, what is refused and how, the Authorization header, where secrets live."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from minidrama.config import register_app
from minidrama.lake import LocalStorage
from minidrama.tokens import (
    READ_SECRET_KEY,
    LakeSecret,
    SecretsManagerSecret,
    TokenError,
    bearer_token,
    issue_token,
    new_secret,
    verify_token,
)

SECRET = b"0123456789abcdef0123456789abcdef-read-secret"
OTHER_SECRET = b"fedcba9876543210fedcba9876543210-read-secret"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=14)
TOKEN = issue_token(SECRET, "app-1", EXPIRES).token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: Any, secret: bytes = SECRET) -> str:
    """A token of any claims, signed properly: what verify_token must still check."""
    signed_part = f"mdr1.{_b64(json.dumps(claims).encode())}"
    return f"{signed_part}.{_b64(hmac.new(secret, signed_part.encode(), hashlib.sha256).digest())}"


def _codes(error: pytest.ExceptionInfo[TokenError]) -> tuple[int, str]:
    return error.value.status, error.value.code


def test_a_token_verifies_for_its_app_until_its_expiry() -> None:
    # GIVEN a token issued for app-1 until EXPIRES (microseconds are dropped)
    issued = issue_token(SECRET, "app-1", EXPIRES + timedelta(microseconds=999))
    # WHEN it is verified a second before it expires
    verified = verify_token(SECRET, issued.token, "app-1", EXPIRES - timedelta(seconds=1))
    # THEN it names its app and expiry, as `minidrama apps token` prints them
    assert (verified.app_id, verified.expires_at) == ("app-1", EXPIRES)
    assert issued.public() == {"app_id": "app-1", "token": issued.token, "expires_at": "2026-12-12T10:00:00Z"}
    assert issued.token.startswith("mdr1.") and issued.token.count(".") == 2


def _replace_part(token: str, index: int, part: str) -> str:
    parts = token.split(".")
    parts[index] = part
    return ".".join(parts)


def _flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def _same_bytes_spelled_otherwise(signature: str) -> str:
    """The 32-byte signature with the 2 unused bits of its last character set otherwise."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(signature[-1])
    spelled = signature[:-1] + alphabet[value ^ 1]
    assert base64.urlsafe_b64decode(spelled + "=") == base64.urlsafe_b64decode(signature + "=")
    return spelled


INVALID: dict[str, Callable[[], str]] = {
    "claims of another app": lambda: _replace_part(
        TOKEN, 1, issue_token(SECRET, "app-2", EXPIRES).token.split(".")[1]
    ),
    "claims with a later expiry": lambda: _replace_part(
        TOKEN, 1, issue_token(SECRET, "app-1", EXPIRES + timedelta(days=365)).token.split(".")[1]
    ),
    "tampered signature": lambda: _replace_part(TOKEN, 2, _flip_last(TOKEN.split(".")[2])),
    "signature spelled otherwise": lambda: _replace_part(
        TOKEN, 2, _same_bytes_spelled_otherwise(TOKEN.split(".")[2])
    ),
    "non-ASCII claims": lambda: _replace_part(TOKEN, 1, "\u00e9t\u00e9"),
    "non-ASCII signature": lambda: _replace_part(TOKEN, 2, "\u00e9" * 43),
    "truncated": lambda: TOKEN[:-4],
    "signature cut off": lambda: TOKEN.rsplit(".", 1)[0],
    "extra dot": lambda: TOKEN + ".",
    "extra part": lambda: TOKEN + ".AAAA",
    "signature not base64url": lambda: _replace_part(TOKEN, 2, "not+base64/="),
    "claims not base64url": lambda: _signed_raw_claims("***"),
    "claims not JSON": lambda: _signed_raw_claims(_b64(b"app-1 forever")),
    "claims a list": lambda: _signed(["app-1", 2_000_000_000]),
    "expiry a string": lambda: _signed({"app": "app-1", "exp": "2000000000"}),
    "expiry a float": lambda: _signed({"app": "app-1", "exp": 2e9}),
    "expiry a boolean": lambda: _signed({"app": "app-1", "exp": True}),
    "no app": lambda: _signed({"exp": 2_000_000_000}),
    "wrong prefix": lambda: "mdr2" + TOKEN.removeprefix("mdr1"),
    "no prefix": lambda: TOKEN.removeprefix("mdr1."),
    "signed with another secret": lambda: issue_token(OTHER_SECRET, "app-1", EXPIRES).token,
    "an ingest key's shape": lambda: "mdk_" + "x" * 43,
    "empty": lambda: "",
}


def _signed_raw_claims(claims: str) -> str:
    signed_part = f"mdr1.{claims}"
    return f"{signed_part}.{_b64(hmac.new(SECRET, signed_part.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("name", list(INVALID))
def test_anything_not_signed_as_issued_is_an_invalid_token(name: str) -> None:
    # GIVEN a token that is not one issued with SECRET, or was changed since
    token = INVALID[name]()
    # WHEN it is verified, THEN it is refused as invalid (never expired or another app's)
    with pytest.raises(TokenError) as refused:
        verify_token(SECRET, token, "app-1", NOW)
    assert _codes(refused) == (401, "invalid_token")
    assert "minidrama apps token" in str(refused.value)


def test_an_ingest_key_is_not_a_read_token(lake: LocalStorage) -> None:
    # GIVEN the ingest key of a registered app (it ships inside client apps)
    _app, api_key = register_app(lake, "app-1")
    # WHEN it is given as a read token, THEN it is refused as not a token at all
    with pytest.raises(TokenError) as refused:
        verify_token(LakeSecret(lake, create=True).current(), api_key, "app-1", NOW)
    assert _codes(refused) == (401, "invalid_token")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (EXPIRES - timedelta(seconds=1), None),
        (EXPIRES, (401, "token_expired")),
        (EXPIRES + timedelta(days=1), (401, "token_expired")),
    ],
    ids=["a second before", "exactly at expiry", "a day after"],
)
def test_a_token_expires_at_its_expiry(now: datetime, expected: tuple[int, str] | None) -> None:
    if expected is None:
        assert verify_token(SECRET, TOKEN, "app-1", now).app_id == "app-1"
        return
    with pytest.raises(TokenError) as refused:
        verify_token(SECRET, TOKEN, "app-1", now)
    assert _codes(refused) == expected
    assert "2026-12-12T10:00:00Z" in str(refused.value)


@pytest.mark.parametrize(
    ("now", "expected"),
    [(NOW, (403, "token_for_another_app")), (EXPIRES, (401, "token_expired"))],
    ids=["valid", "expired"],
)
def test_a_token_of_another_app_is_forbidden_once_it_is_valid(
    now: datetime, expected: tuple[int, str]
) -> None:
    with pytest.raises(TokenError) as refused:
        verify_token(SECRET, TOKEN, "app-2", now)
    assert _codes(refused) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, (401, "missing_token")),
        ({}, (401, "missing_token")),
        ({"x-api-key": "mdk_abc"}, (401, "missing_token")),
        ({"Authorization": ""}, (401, "missing_token")),
        ({"Authorization": []}, (401, "missing_token")),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, (401, "invalid_token")),
        ({"Authorization": "Bearer"}, (401, "invalid_token")),
        ({"Authorization": "Bearer    "}, (401, "invalid_token")),
        ({"Authorization": "mdr1.abc.def"}, (401, "invalid_token")),
        ({"Authorization": "Bearer mdr1.abc.def"}, "mdr1.abc.def"),
        ({"authorization": "bearer mdr1.abc.def"}, "mdr1.abc.def"),
        ({"AUTHORIZATION": "BEARER  mdr1.abc.def "}, "mdr1.abc.def"),
        ({"AuThOrIzAtIoN": "BeArEr mdr1.abc.def"}, "mdr1.abc.def"),
        ({"Authorization": ["Bearer mdr1.abc.def"]}, "mdr1.abc.def"),
    ],
)
def test_the_token_comes_from_a_bearer_authorization_header(headers: Any, expected: Any) -> None:
    if isinstance(expected, str):
        assert bearer_token(headers) == expected
        return
    with pytest.raises(TokenError) as refused:
        bearer_token(headers)
    assert _codes(refused) == expected
    assert "Bearer <read token>" in str(refused.value)


# --- where the secret lives ----------------------------------------------------------------


def test_a_lake_secret_is_created_once_and_kept(lake: LocalStorage) -> None:
    # GIVEN a lake that never issued a token: reading it without creating refuses every token
    with pytest.raises(TokenError) as refused:
        LakeSecret(lake).current()
    assert _codes(refused) == (401, "invalid_token")
    assert not lake.exists(READ_SECRET_KEY)
    # WHEN the CLI's first token creates it
    created = LakeSecret(lake, create=True).current()
    # THEN it is stored, and every later reader (creating or not) gets the same one
    assert len(created) >= 32 and lake.get_bytes(READ_SECRET_KEY) == created
    assert LakeSecret(lake, create=True).current() == created
    assert LakeSecret(lake).current() == created


def test_rotating_a_lake_secret_revokes_the_tokens_signed_before(lake: LocalStorage) -> None:
    # GIVEN a token signed with the lake's secret
    secret = LakeSecret(lake, create=True)
    token = issue_token(secret.current(), "app-1", EXPIRES).token
    # WHEN the secret is rotated
    secret.rotate()
    # THEN the token is invalid, and a token signed now verifies
    with pytest.raises(TokenError) as refused:
        verify_token(LakeSecret(lake).current(), token, "app-1", NOW)
    assert _codes(refused) == (401, "invalid_token")
    fresh = issue_token(secret.current(), "app-1", EXPIRES).token
    assert verify_token(LakeSecret(lake).current(), fresh, "app-1", NOW).app_id == "app-1"


def test_a_lake_secret_too_short_to_be_one_is_refused(lake: LocalStorage) -> None:
    lake.put_bytes(READ_SECRET_KEY, b"short\n")
    with pytest.raises(ValueError, match="under 32 bytes"):
        LakeSecret(lake).current()


class FakeSecretsManager:
    """The two calls of the boto3 secretsmanager client that SecretsManagerSecret makes."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:
        assert SecretId == "arn:read-secret"
        self.reads += 1
        return {"SecretString": self.value}

    def put_secret_value(self, *, SecretId: str, SecretString: str) -> None:
        assert SecretId == "arn:read-secret"
        self.value = SecretString


def test_the_secrets_manager_secret_is_cached_for_its_ttl() -> None:
    # GIVEN the deployed secret, read through a 300 s cache on a fake clock
    client = FakeSecretsManager("a" * 64)
    clock = [1000.0]
    secret = SecretsManagerSecret(client, "arn:read-secret", ttl_seconds=300, clock=lambda: clock[0])
    assert secret.current() == b"a" * 64
    # WHEN the secret is rotated elsewhere (another function, the CLI)
    client.value = "b" * 64
    # THEN the cached value serves until the ttl has passed, then the new one is read
    clock[0] += 299
    assert (secret.current(), client.reads) == (b"a" * 64, 1)
    clock[0] += 1
    assert (secret.current(), client.reads) == (b"b" * 64, 2)
    assert (secret.current(), client.reads) == (b"b" * 64, 2)


def test_rotating_through_the_secrets_manager_secret_takes_effect_at_once() -> None:
    client = FakeSecretsManager("a" * 64)
    secret = SecretsManagerSecret(client, "arn:read-secret", clock=lambda: 0.0)
    old = secret.current()
    secret.rotate()
    assert secret.current() != old and secret.current() == client.value.encode()
    assert len(new_secret()) >= 32


def test_a_secrets_manager_secret_too_short_is_refused() -> None:
    with pytest.raises(ValueError, match="under 32 bytes"):
        SecretsManagerSecret(FakeSecretsManager("short"), "arn:read-secret").current()
