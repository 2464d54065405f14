"""Who is looking at a page: the web UI's sign-in session, and its CSRF token.

Signing in with an API key sets a cookie holding the key's SHA-256 (what the database keeps,
never the key) and a random CSRF token, signed with the server's session secret; it is
``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no other site's page sends it).
Every request checks the key again, so a revoked or expired key, or a disabled user, ends
the session at once. A form that changes something carries the CSRF token of the session,
and a POST without it is refused. The sign-in form is guarded too (login CSRF: another
site's page must not sign a person in with the attacker's key, so that what they then
upload goes to the attacker): showing it sets a short-lived cookie holding a signed random
token, and the form carries the token back.

``soko ui`` serves one person's embedded store on 127.0.0.1: there is no sign-in, the
person is :data:`LOCAL_USER`, who may do everything.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from soko.errors import AuthenticationError, PermissionDeniedError
from soko.server import auth
from soko.server.auth import Principal
from soko.server.state import ServerState

COOKIE = "soko_session"
SIGNIN_COOKIE = "soko_signin"
SIGNIN_MAX_AGE = 3600
"""Seconds a sign-in form stays good; after that it is shown again with a new token."""
SESSION_MAX_AGE = 12 * 3600
"""Seconds a sign-in lasts: a working day, then the key is asked for again."""
LOCAL_USER = Principal(user_id=0, name="local", admin=True)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


class SignInRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person a page is for, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str
    signed_in: bool
    """False for ``soko ui``'s local user, who never signs in (and cannot sign out)."""


@dataclass(frozen=True, slots=True)
class Sessions:
    secret: str
    local: bool
    """``soko ui``: everyone reaching the loopback address is :data:`LOCAL_USER`."""

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt="soko-ui-session")

    def new_cookie(self, state: ServerState, key: str) -> str:
        """The cookie value of a session of *key*; AuthenticationError for a bad key."""
        auth.authenticate(state.store.engine, key)
        return str(
            self._serializer().dumps({"k": auth.hash_key(key), "c": secrets.token_urlsafe(24)})
        )

    def viewer(self, request: Request, state: ServerState) -> Viewer:
        """The viewer of *request*; SignInRequired when it has no valid session."""
        if self.local:
            # Another site's page cannot reach the loopback UI under its own name (DNS
            # rebinding): only requests addressed to the loopback address are served.
            host = request.headers.get("host", "").rsplit(":", 1)[0]
            if host not in LOOPBACK_NAMES:
                raise PermissionDeniedError(
                    f"soko ui answers requests to 127.0.0.1 or localhost, not to {host!r}."
                )
            return Viewer(LOCAL_USER, csrf=self._local_csrf(), signed_in=False)
        raw = request.cookies.get(COOKIE)
        if not raw:
            raise SignInRequired()
        try:
            data = self._serializer().loads(raw, max_age=SESSION_MAX_AGE)
            digest, csrf = str(data["k"]), str(data["c"])
        except (BadSignature, KeyError, TypeError):
            raise SignInRequired() from None
        try:
            principal = auth.authenticate_digest(state.store.engine, digest)
        except AuthenticationError:
            raise SignInRequired() from None
        return Viewer(principal, csrf=csrf, signed_in=True)

    def _signin_serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt="soko-ui-signin")

    def signin_token(self, cookie: str | None) -> tuple[str, str]:
        """(cookie value, token) for a sign-in form: the token of *cookie* while it is good
        (so that two open sign-in forms both work), else a new one."""
        token = self._signin_token_of(cookie) or secrets.token_urlsafe(24)
        return str(self._signin_serializer().dumps(token)), token

    def _signin_token_of(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._signin_serializer().loads(cookie, max_age=SIGNIN_MAX_AGE)
        except BadSignature:
            return None
        return token if isinstance(token, str) and token else None

    def check_signin(self, cookie: str | None, token: str | None) -> None:
        """PermissionDeniedError unless *token*, the form's, is the sign-in cookie's: a form
        posted from another site's page has neither (the cookie is ``SameSite=Strict``)."""
        expected = self._signin_token_of(cookie)
        if expected is None or not token or not hmac.compare_digest(token, expected):
            raise PermissionDeniedError(
                "This sign-in form is out of date or did not come from this server; try again."
            )

    def _local_csrf(self) -> str:
        # The local UI has no cookie to keep a token in: the token is derived from the
        # secret of this process, which no other site's page can read.
        return hmac.new(self.secret.encode(), b"soko-ui-local-csrf", "sha256").hexdigest()

    def check_csrf(self, viewer: Viewer, token: str | None) -> None:
        # The token, not the Origin header: behind a reverse proxy the Host the server
        # sees may differ from the name in the browser.
        if not token or not hmac.compare_digest(token, viewer.csrf):
            raise PermissionDeniedError(
                "This form is out of date or did not come from this server; reload the page "
                "and try again."
            )
