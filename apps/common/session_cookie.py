"""The cookie that keeps a local sign-in across reloads and new tabs, and the app's route that
sets and clears it.

Streamlit's scripts cannot set cookies: they run over a websocket, after the page loaded. So
each app is served as an ``st.App`` (``apps/<app>/serve.py``) with one route of its own,
``/_gjh/session``: right after a sign-in, the page posts the run's one-time ticket there and
the answer sets the cookie; after a sign-out, the page asks it to clear the cookie. The
browser then sends the cookie with the websocket's handshake of every new tab or reload, where
``st.context.cookies`` reads it, and ``apps/common/auth.py`` checks its signature and the
server's record of the session.

The cookie is:

- ``HttpOnly``: no script in the page can read it (``document.cookie`` does not list it);
- ``SameSite=Strict``: never sent with a request another site starts. Strict costs nothing
  here: the session is read from the websocket the app's own page opens, which is always
  same-site, even when the person followed a link from elsewhere to a study;
- ``Secure`` when the page was served over https (the ``Origin`` the browser sends says so,
  also behind a proxy that ends TLS), so that it never travels in clear there;
- named per app (``gjh_session_<app>``): cookies ignore ports, and the four apps may share a
  host;
- ``Path=/`` and ``Max-Age`` of the maximum session age; idle and maximum age are enforced by
  the server, whatever the browser keeps.

The route answers only requests whose ``Origin`` is the app's own (a page elsewhere cannot sign
a browser in to the session of its choice, or out of it), and only to an unused, fresh ticket.
"""

from __future__ import annotations

import json
import time
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from streamlit import config
from streamlit.url_util import make_url_path

from apps.common.sessions import MAX_AGE_S, STORE, session_of

PATH: Final = "_gjh/session"
MAX_TICKET_CHARS: Final = 128


def cookie_name(app: str) -> str:
    """The cookie of ``app``'s local sessions."""
    return f"gjh_session_{app}"


def url() -> str:
    """The route's path, under Streamlit's ``server.baseUrlPath`` when one is set."""
    return make_url_path(str(config.get_option("server.baseUrlPath") or ""), PATH)


def _origin(request: Request) -> str | None:
    """The scheme of the page that sent ``request`` when it is this app's own page (its
    ``Origin`` names the host the request was sent to); None for any other origin."""
    origin = urlsplit(request.headers.get("origin", ""))
    host = request.headers.get("host", "")
    same = origin.scheme in ("http", "https") and bool(host) and origin.netloc == host
    return origin.scheme if same else None


def routes(app: str) -> list[BaseRoute]:
    """The route that sets (``POST``, the ticket as the body) and clears (``DELETE``) the
    cookie of ``app``'s sessions. Any other origin, or a used, stale or unknown ticket, is
    refused with 403 and sets nothing; a cookie that still opens a session (a sign-in in
    another tab since this one's ended) is not cleared."""
    name = cookie_name(app)

    async def endpoint(request: Request) -> Response:
        scheme = _origin(request)
        if scheme is None:
            return Response(status_code=403)
        if request.method == "DELETE":
            session = session_of(app, request.cookies.get(name))
            if session is not None and STORE.holds(session):
                return Response(status_code=204)  # another tab's sign-in since: kept
            value, max_age = "", 0
        else:
            ticket = (await request.body())[:MAX_TICKET_CHARS].decode("ascii", "replace")
            redeemed = STORE.redeem(ticket, time.time())
            if redeemed is None:
                return Response(status_code=403)
            value, max_age = redeemed, int(MAX_AGE_S)
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    return [Route(url(), endpoint, methods=["POST", "DELETE"])]


def _call(method: str, body: str | None = None) -> str:
    """A script that calls the route once, from the page (same origin, so the answer's
    ``Set-Cookie`` is kept)."""
    options = {"method": method, "credentials": "same-origin", "cache": "no-store"}
    if body is not None:
        options["body"] = body
    return f"<script>fetch({json.dumps(url())}, {json.dumps(options)});</script>"


def keep_script(ticket: str) -> str:
    """The page's call that turns ``ticket`` into the session's cookie."""
    return _call("POST", ticket)


def drop_script() -> str:
    """The page's call that clears the cookie (after sign-out, or when it was refused)."""
    return _call("DELETE")
