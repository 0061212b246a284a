"""A real OpenID Connect provider on localhost, for the apps' sign-in tests.

It serves what an app's client (Streamlit's ``st.login``, Authlib underneath) talks to, over
HTTP on a free port, in a thread of the test process:

- ``/.well-known/openid-configuration``: the discovery document;
- ``/authorize``: a login page (GET) whose form (POST) checks a user name and password and
  sends the browser back to the registered ``redirect_uri`` with a one-time code;
- ``/token``: the code for an access token and an ID token signed RS256 (joserfc, Authlib's
  JOSE library), after checking the client's secret (HTTP Basic or form), the redirect URI
  and the PKCE verifier (S256);
- ``/jwks``: the public signing key; ``/userinfo``: the claims for a bearer token;
- ``/logout``: RP-initiated logout (``end_session_endpoint``), which ends the person's session
  here and returns to a registered URI.

Nothing is mocked: the app fetches the metadata, the key and the token itself, and verifies
the signature, issuer, audience and nonce as it would with the city's provider. Use it as a
context manager::

    with OidcProvider({"dr.oh": User("sub-1", "dr.oh@hospital.test", "오의사")}) as op:
        op.register("gjh-clinician", secret, f"{app.url}/oauth2callback")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

CODE_TTL_S = 60
TOKEN_TTL_S = 300
PASSWORD = "provider-password-1"  # every test user's password at this provider
SESSION_COOKIE = "test_op_session"  # not a name Streamlit uses on the same host


@dataclass(frozen=True)
class User:
    """A person with an account at the provider."""

    sub: str
    email: str
    name: str


@dataclass(frozen=True)
class _Client:
    secret: str
    redirect_uris: frozenset[str]


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    user: User
    nonce: str | None
    challenge: str | None
    expires: float


@dataclass
class OidcProvider:
    """The provider; ``issuer`` is its URL once entered. ``signed_in`` and ``signed_out`` list
    the subjects that signed in and out here, in order."""

    users: dict[str, User]
    issuer: str = ""
    signed_in: list[str] = field(default_factory=list)
    signed_out: list[str] = field(default_factory=list)
    _clients: dict[str, _Client] = field(default_factory=dict)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _tokens: dict[str, User] = field(default_factory=dict)
    _sessions: dict[str, str] = field(default_factory=dict)
    _key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"}, private=True
        )
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def register(self, client_id: str, secret: str, redirect_uri: str) -> None:
        """Register a client (an app) with its secret and its one callback URI."""
        with self._lock:
            self._clients[client_id] = _Client(secret, frozenset({redirect_uri}))

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def __enter__(self) -> OidcProvider:
        provider = self

        class Handler(_Handler):
            op = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- What the endpoints do -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self._key]).as_dict(private=False))

    def check_authorize(self, params: dict[str, str]) -> str | None:
        """Why an authorization request is invalid (None: it is valid)."""
        client = self._clients.get(params.get("client_id", ""))
        if client is None:
            return "unknown client"
        if params.get("redirect_uri") not in client.redirect_uris:
            return "redirect_uri not registered"
        if params.get("response_type") != "code":
            return "only the code flow"
        if "openid" not in params.get("scope", "").split():
            return "scope must include openid"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "only S256 PKCE"
        return None

    def log_in(self, params: dict[str, str]) -> tuple[User, str] | None:
        """The user and a one-time code for a right user name and password, else None."""
        user = self.users.get(params.get("username", ""))
        if user is None or not hmac.compare_digest(params.get("password", ""), PASSWORD):
            return None
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                params["client_id"],
                params["redirect_uri"],
                user,
                params.get("nonce"),
                params.get("code_challenge"),
                time.time() + CODE_TTL_S,
            )
            self.signed_in.append(user.sub)
        return user, code

    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any] | None:
        """The token response for a valid code exchange, else None."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = (unquote(part) for part in decoded.partition(":"))
        client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(secret, client.secret):
            return None
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or grant.expires < time.time()
        ):
            return None
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if not hmac.compare_digest(digest.decode(), grant.challenge):
                return None
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.user.sub,
            "aud": client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + TOKEN_TTL_S,
            "email": grant.user.email,
            "email_verified": True,
            "name": grant.user.name,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = grant.user
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
            "scope": "openid email profile",
            "id_token": jwt.encode({"alg": "RS256", "kid": self._key.kid}, claims, self._key),
        }

    def userinfo(self, authorization: str | None) -> dict[str, Any] | None:
        user = self._tokens.get((authorization or "").removeprefix("Bearer "))
        if user is None:
            return None
        return {"sub": user.sub, "email": user.email, "email_verified": True, "name": user.name}

    def log_out(self, params: dict[str, str], session: str | None) -> str | None:
        """End the session of the ID token's subject; where to send the browser back."""
        try:
            sub = jwt.decode(params.get("id_token_hint", ""), self._key).claims.get("sub")
        except (JoseError, ValueError):
            sub = self._sessions.get(session or "")
        with self._lock:
            if sub:
                self.signed_out.append(str(sub))
            self._sessions = {k: v for k, v in self._sessions.items() if v != sub}
        back = params.get("post_logout_redirect_uri", "")
        client = self._clients.get(params.get("client_id", ""))
        if client is None or back not in client.redirect_uris:
            return None
        state = params.get("state")
        return f"{back}?{urlencode({'state': state})}" if state else back

    def start_session(self, user: User) -> str:
        session = secrets.token_urlsafe(16)
        with self._lock:
            self._sessions[session] = user.sub
        return session


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><h1>Test identity provider</h1>{error}
<form method="post" action="/authorize">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
{hidden}<button type="submit">Sign in</button>
</form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    op: OidcProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        return

    def _params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _form(self) -> dict[str, str]:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _send(
        self, status: int, body: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc), "application/json")

    def _redirect(self, to: str, headers: dict[str, str] | None = None) -> None:
        self._send(302, "", "text/plain", {"Location": to, **(headers or {})})

    def _login_page(self, params: dict[str, str], error: str = "") -> None:
        keep = {k: v for k, v in params.items() if k not in {"username", "password"}}
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in keep.items()
        )
        page = _LOGIN_PAGE.format(
            error=f"<p role='alert'>{error}</p>" if error else "", hidden=hidden
        )
        self._send(401 if error else 200, page, "text/html; charset=utf-8")

    def do_GET(self) -> None:
        path, params = urlsplit(self.path).path, self._params()
        if path == "/.well-known/openid-configuration":
            self._json(200, self.op.discovery())
        elif path == "/jwks":
            self._json(200, self.op.jwks())
        elif path == "/authorize":
            problem = self.op.check_authorize(params)
            if problem:
                self._json(400, {"error": "invalid_request", "error_description": problem})
            else:
                self._login_page(params)
        elif path == "/userinfo":
            claims = self.op.userinfo(self.headers.get("Authorization"))
            self._json(200, claims) if claims else self._json(401, {"error": "invalid_token"})
        elif path == "/logout":
            session = self._cookie(SESSION_COOKIE)
            back = self.op.log_out(params, session)
            expire = {"Set-Cookie": f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly"}
            if back:
                self._redirect(back, expire)
            else:
                self._send(200, "<p>Signed out</p>", "text/html; charset=utf-8", expire)
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path, form = urlsplit(self.path).path, self._form()
        if path == "/authorize":
            problem = self.op.check_authorize(form)
            if problem:
                self._json(400, {"error": "invalid_request", "error_description": problem})
                return
            logged_in = self.op.log_in(form)
            if logged_in is None:
                self._login_page(form, "Wrong user name or password")
                return
            user, code = logged_in
            answer = {"code": code, **({"state": form["state"]} if "state" in form else {})}
            session = self.op.start_session(user)
            self._redirect(
                f"{form['redirect_uri']}?{urlencode(answer)}",
                {"Set-Cookie": f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"},
            )
        elif path == "/token":
            tokens = self.op.token(form, self.headers.get("Authorization"))
            if tokens is None:
                self._json(400, {"error": "invalid_grant"})
            else:
                self._json(200, tokens)
        else:
            self._json(404, {"error": "not_found"})

    def _cookie(self, name: str) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None
