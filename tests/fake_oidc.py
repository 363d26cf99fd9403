"""A small OpenID Connect provider on 127.0.0.1 for the sign-in tests.

It serves discovery, a JWKS, an authorize endpoint and a token endpoint, and signs RS256 ID tokens
with its own RSA key, so Authlib runs its real flow against it over real HTTP. It records what the
client sent (authorize query, token requests) and lets each test say what the next ID token will
contain, to inject faults. It checks client authentication and PKCE S256 like a real provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.datastructures import Authorization
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

ID_TOKEN_LIFETIME_S = 300

# Put as a claim value in `set_next_id_token` to leave that claim out of the next ID token.
OMIT = object()


@dataclass(frozen=True)
class IssuedCode:
    """What an authorization code was issued for; the token endpoint checks the exchange against it."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    scope: str


@dataclass(frozen=True)
class TokenRequest:
    """One call to the token endpoint and what the provider concluded about it."""

    form: dict[str, str]
    client_authenticated: bool
    pkce_verified: bool
    status: int


@dataclass
class FakeOIDCProvider:
    """An OIDC provider for one client, listening on 127.0.0.1 in a background thread."""

    client_id: str
    client_secret: str
    subject: str = "subject-1"
    email: str = "candidate@example.test"
    name: str = "Casey Candidate"
    clock: Callable[[], float] = time.time
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[TokenRequest] = field(default_factory=list)
    advertised_issuer: str | None = None
    _next_claims: dict[str, Any] = field(default_factory=dict)
    _next_signing_key: RSAKey | None = None
    _codes: dict[str, IssuedCode] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None
    _signing_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "fake-oidc-key", "use": "sig"})
    )

    def start(self) -> FakeOIDCProvider:
        """Bind a free loopback port (ready once this returns) and serve requests in a thread."""
        self._server = make_server("127.0.0.1", 0, self._wsgi_app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() the provider first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset(self) -> None:
        """Forget every recorded request, issued code, pending fault and override."""
        with self._lock:
            self.authorize_requests.clear()
            self.token_requests.clear()
            self._next_claims = {}
            self._next_signing_key = None
            self._codes.clear()
            self.advertised_issuer = None
            self.subject = "subject-1"
            self.email = "candidate@example.test"

    def set_next_id_token(self, claims: dict[str, Any], signing_key: RSAKey | None = None) -> None:
        """Override claims of the next ID token only (`OMIT` leaves a claim out), or its signing key."""
        with self._lock:
            self._next_claims = dict(claims)
            self._next_signing_key = signing_key

    def sign_id_token(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        """An RS256 JWT over `claims`, signed with the provider's key unless another is given."""
        signing_key = key or self._signing_key
        header = {"alg": "RS256", "kid": signing_key.kid}
        return jwt.encode(header, claims, signing_key)

    def _wsgi_app(self, environ, start_response):
        request = Request(environ)
        routes = {
            "/.well-known/openid-configuration": self._discovery,
            "/jwks": self._jwks,
            "/authorize": self._authorize,
            "/token": self._token,
        }
        handler = routes.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _discovery(self, _request: Request) -> Response:
        return _json(
            {
                "issuer": self.advertised_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    def _jwks(self, _request: Request) -> Response:
        return _json({"keys": [self._signing_key.as_dict(private=False)]})

    def _authorize(self, request: Request) -> Response:
        """Record the query and redirect back with a fresh code, as after a successful login."""
        query = request.args.to_dict(flat=True)
        with self._lock:
            self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return _json({"error": "unauthorized_client"}, status=400)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = IssuedCode(
                client_id=query["client_id"],
                redirect_uri=query.get("redirect_uri", ""),
                nonce=query.get("nonce"),
                code_challenge=query.get("code_challenge"),
                code_challenge_method=query.get("code_challenge_method"),
                scope=query.get("scope", ""),
            )
        back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        return Response(status=302, headers={"Location": f"{query['redirect_uri']}?{urlencode(back)}"})

    def _token(self, request: Request) -> Response:
        """Exchange a code once, after checking client authentication, redirect URI and PKCE."""
        form = request.form.to_dict(flat=True)
        client_authenticated = self._client_authenticated(request.authorization, form)
        with self._lock:
            issued = self._codes.pop(form.get("code", ""), None)
            overrides, self._next_claims = self._next_claims, {}
            signing_key, self._next_signing_key = self._next_signing_key, None
        pkce_verified = issued is not None and _pkce_matches(issued, form.get("code_verifier"))
        error = None
        if not client_authenticated:
            error = "invalid_client"
        elif form.get("grant_type") != "authorization_code" or issued is None:
            error = "invalid_grant"
        elif issued.redirect_uri != form.get("redirect_uri") or not pkce_verified:
            error = "invalid_grant"
        status = 400 if error else 200
        with self._lock:
            self.token_requests.append(TokenRequest(form, client_authenticated, pkce_verified, status))
        if error:
            return _json({"error": error}, status=status)
        access_token = secrets.token_urlsafe(24)
        id_token = self.sign_id_token(self._id_token_claims(issued, overrides), signing_key)
        return _json(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": issued.scope,
                "id_token": id_token,
            }
        )

    def _client_authenticated(self, authorization: Authorization | None, form: dict[str, str]) -> bool:
        if authorization is not None and authorization.type == "basic":
            presented = (authorization.username, authorization.password)
        else:
            presented = (form.get("client_id"), form.get("client_secret"))
        return presented == (self.client_id, self.client_secret)

    def _id_token_claims(self, issued: IssuedCode, overrides: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": issued.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_S,
            "email": self.email,
            "email_verified": True,
            "name": self.name,
        }
        if issued.nonce is not None:
            claims["nonce"] = issued.nonce
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not OMIT}


def pkce_s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _pkce_matches(issued: IssuedCode, verifier: str | None) -> bool:
    if issued.code_challenge_method != "S256" or not issued.code_challenge or not verifier:
        return False
    return secrets.compare_digest(pkce_s256_challenge(verifier), issued.code_challenge)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
