"""API keys and their scopes, checked in one dependency; per-key rate limits on the expensive routes.

Keys are held as SHA-256 digests and compared in constant time against every configured key. A key is
never logged: callers are identified by a short digest (``key_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from recommender.settings import DEFAULT_TENANT, LOOPBACK_HOSTS, ApiSettings, KeyGrant

API_KEY_HEADER = "X-API-Key"
# Keys must never travel in URLs (they end up in proxy and access logs).
KEY_LIKE_QUERY_PARAMETERS = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token"})
ANONYMOUS = "loopback"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="An API key; its scopes decide what it may call."
)
bearer = HTTPBearer(auto_error=False, description="The same API key, as `Authorization: Bearer <key>`.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``key_id`` is a digest prefix of the key (or ``loopback`` when no keys are set), and
    ``tenant`` the one shop whose data the key reaches."""

    key_id: str
    scopes: frozenset[str]
    tenant: str = DEFAULT_TENANT


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    def __init__(self, keys: dict[str, KeyGrant]) -> None:
        self._entries = [
            (_digest(key), Caller(_digest(key).hex()[:12], frozenset(grant.scopes), grant.tenant))
            for key, grant in keys.items()
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def find(self, presented: str) -> Caller | None:
        digest = _digest(presented)
        found = None
        # No early exit: every configured key is compared, so timing says nothing about which one matched.
        for stored, caller in self._entries:
            if hmac.compare_digest(stored, digest):
                found = caller
        return found


def check_exposure(host: str, api_settings: ApiSettings) -> None:
    """Refuse to serve beyond loopback without keys: say why, before anything binds."""
    if host not in LOOPBACK_HOSTS and not api_settings.resolved_keys():
        raise SystemExit(
            f"refusing to serve on {host} without API keys: set RECO_API__KEYS (e.g. "
            '\'{"<a long random key>": ["read", "write", "admin"]}\') or RECO_API__KEYS_FILE, '
            "or serve on 127.0.0.1"
        )


def _is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=message,
        headers={"WWW-Authenticate": 'Bearer realm="recommender"'},
    )


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    header_key: Annotated[str | None, Security(api_key_header)] = None,
    bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Caller:
    keys: KeyRing = request.app.state.keys
    if not keys.enabled:
        # Without keys only loopback callers are served, however the server was started.
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="this service has no API keys configured and answers loopback callers only",
            )
        return Caller(ANONYMOUS, frozenset({"read", "write", "admin", "metrics"}))
    if KEY_LIKE_QUERY_PARAMETERS & {name.lower() for name in request.query_params}:
        raise _unauthorized(
            f"API keys are not accepted in the query string; send the key in the {API_KEY_HEADER} header "
            "or as Authorization: Bearer"
        )
    presented = header_key or (bearer_credentials.credentials if bearer_credentials else None)
    if not presented:
        raise _unauthorized(f"an API key is required: send it in the {API_KEY_HEADER} header")
    caller = keys.find(presented)
    if caller is None:
        raise _unauthorized("the API key is not valid")
    missing = [scope for scope in security_scopes.scopes if scope not in caller.scopes]
    if missing:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this API key lacks the {missing[0]!r} scope for this operation",
        )
    return caller


class RateLimiter:
    """Moving-window counters per (route group, key); memory by default, Redis to share across processes."""

    def __init__(self, api_settings: ApiSettings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(api_settings.rate_limit_storage))
        self._limits: dict[str, RateLimitItem] = {
            name: parse(text) for name, text in api_settings.rate_limits.items()
        }

    def hit(self, group: str, key_id: str) -> None:
        limit = self._limits.get(group)
        if limit is None or self._limiter.hit(limit, group, key_id):
            return
        reset_at = self._limiter.get_window_stats(limit, group, key_id).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit of {limit} for {group} reached for this key; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def limited(group: str, scope: str):  # type: ignore[no-untyped-def]
    """A dependency: the caller must hold ``scope``; each call counts against ``group``'s limit."""

    # A default, not an Annotated hint: string annotations could not see ``scope`` from here.
    def check(request: Request, caller: Caller = Security(authenticate, scopes=[scope])) -> Caller:  # noqa: B008
        request.app.state.limiter.hit(group, caller.key_id)
        return caller

    return Depends(check)
