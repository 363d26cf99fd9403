"""Sign-in: Authlib OpenID Connect (Google by default, any issuer), or a single local user.

Sessions carry the user id and a per-user session epoch; logout bumps the epoch server-side, so a
replayed cookie is refused afterwards. Every route that takes an id loads its resource through an
owner-scoped loader here, which answers 404 to anyone but the owner.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

import store
from config import ConfigError, Settings, is_loopback_host
from security import error_response, limiter, wants_json

LOCAL_ISSUER = "local"
LOCAL_SUBJECT = "local-user"
ID_TOKEN_LEEWAY_S = 60

bp = Blueprint("auth", __name__)


def check_local_mode_binding(settings: Settings, hosts: list[str]) -> None:
    """Refuse local (no sign-in) mode on a non-loopback address unless AUTH_MODE=local says so."""
    if not settings.local_mode or settings.auth_mode == "local":
        return
    exposed = [host for host in hosts if not is_loopback_host(host)]
    if exposed:
        raise ConfigError(
            f"local mode (no sign-in) on {exposed[0]} would let anyone in; "
            "configure OIDC_CLIENT_ID/OIDC_CLIENT_SECRET or set AUTH_MODE=local explicitly"
        )


def safe_next_url(target: str | None) -> str | None:
    """`target` if it stays on this site (a path, no scheme, no host, no backslash), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def current_user() -> store.User | None:
    """The signed-in user of this request (the local user in local mode), or None."""
    return g.get("user")


def _start_session(user: store.User) -> None:
    session.clear()
    session["user_id"] = user.id
    session["epoch"] = user.session_epoch
    session.permanent = True


def _load_user() -> None:
    """Put the signed-in user (or the local user) on `g`, refusing stale session epochs."""
    g.user = None
    # Static files need no user, and the health check must answer even when the database is down.
    if request.endpoint in ("static", "pages.health"):
        return
    settings: Settings = current_app.config["SETTINGS"]
    db = store.get_db()
    if settings.local_mode:
        g.user = store.get_or_create_user(db, LOCAL_ISSUER, LOCAL_SUBJECT, "", "Local user")
        db.commit()
        return
    user_id = session.get("user_id")
    if user_id is None:
        return
    user = store.get_user(db, user_id)
    if user is None or session.get("epoch") != user.session_epoch:
        session.clear()
        return
    g.user = user


def login_required(view):
    """Pages redirect to sign-in; the JSON API answers 401."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            if wants_json():
                return error_response(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def load_owned_interview(interview_id: str) -> store.Interview:
    """The signed-in user's interview, or 404 for anyone else (never 403: ids are not confirmed)."""
    user = current_user()
    if user is None:
        abort(404)
    interview = store.get_interview_for_owner(store.get_db(), interview_id, user.id)
    if interview is None:
        abort(404)
    return interview


@bp.get("/login")
@limiter.limit("20 per minute")
def login():
    """Start the OIDC flow (state, nonce and PKCE S256 are made by Authlib)."""
    settings: Settings = current_app.config["SETTINGS"]
    if settings.local_mode:
        return redirect(url_for("pages.dashboard"))
    next_url = safe_next_url(request.args.get("next"))
    if not request.args.get("go"):
        return render_template("login.html", provider=settings.sign_in_provider_name, next_url=next_url)
    session["next_url"] = next_url or url_for("pages.dashboard")
    client = current_app.extensions["oidc_client"]
    try:
        return client.authorize_redirect(url_for("auth.callback", _external=True))
    except Exception:
        current_app.logger.exception("could not reach the sign-in provider")
        return error_response(502, "The sign-in provider could not be reached. Try again later.")


@bp.get("/auth/callback")
@limiter.limit("20 per minute")
def callback():
    """Finish the OIDC flow: the ID token must be valid and the email verified."""
    settings: Settings = current_app.config["SETTINGS"]
    if settings.local_mode:
        abort(404)
    client = current_app.extensions["oidc_client"]
    try:
        token = client.authorize_access_token(
            leeway=ID_TOKEN_LEEWAY_S, claims_options=_id_token_claims_options(client, settings)
        )
    except Exception as error:
        current_app.logger.warning("sign-in refused: %s", type(error).__name__)
        return _sign_in_failed("Sign-in failed or expired. Please try again.")
    claims = token.get("userinfo")
    if not claims or "id_token" not in token:
        return _sign_in_failed("The sign-in provider sent no identity. Please try again.")
    if claims.get("email_verified") is not True:
        return _sign_in_failed("Your email address is not verified with your sign-in provider.")
    db = store.get_db()
    user = store.get_or_create_user(
        db,
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=str(claims.get("email", "")),
        name=str(claims.get("name", ""))[:200],
    )
    db.commit()
    next_url = safe_next_url(session.get("next_url")) or url_for("pages.dashboard")
    _start_session(user)
    return redirect(next_url)


class IssuerMismatchError(Exception):
    """The provider's discovery document names an issuer other than the configured one."""


def _id_token_claims_options(client: FlaskOAuth2App, settings: Settings) -> dict:
    """Claims the ID token must carry: our client id in `aud`, the configured issuer in `iss`.

    Authlib checks `aud` only through `azp` unless told, so a token minted for another client that
    names us as `azp` would pass. The discovery document must name the configured issuer (OIDC
    Discovery 4.3), else a provider could speak for another issuer and key accounts by it.
    """
    advertised_issuer = str(client.load_server_metadata().get("issuer", ""))
    if advertised_issuer.rstrip("/") != settings.oidc_issuer.rstrip("/"):
        current_app.logger.warning(
            "the sign-in provider's discovery document names issuer %r, not OIDC_ISSUER %r",
            advertised_issuer,
            settings.oidc_issuer,
        )
        raise IssuerMismatchError(advertised_issuer)
    return {
        "iss": {"essential": True, "value": advertised_issuer},
        "aud": {"essential": True, "value": settings.oidc_client_id},
    }


def _sign_in_failed(message: str):
    session.pop("next_url", None)
    return render_template("login.html", error=message,
                           provider=current_app.config["SETTINGS"].sign_in_provider_name), 400


@bp.post("/logout")
def logout():
    """End the session everywhere: the epoch bump refuses any copy of the old cookie."""
    user = current_user()
    if user is not None and not current_app.config["SETTINGS"].local_mode:
        db = store.get_db()
        store.bump_session_epoch(db, user.id)
        db.commit()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("pages.landing"))


def init_app(app: Flask) -> None:
    """Register the sign-in routes, the user loader and the OIDC client."""
    settings: Settings = app.config["SETTINGS"]
    if settings.local_mode:
        app.logger.warning(
            "MockFlow runs in local mode: a single local user, no sign-in. "
            "Configure OIDC_CLIENT_ID/OIDC_CLIENT_SECRET to require sign-in."
        )
    else:
        app.extensions["oidc_client"] = OAuth(app).register(
            "oidc",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
            overwrite=True,
        )
    app.before_request(_load_user)
    app.register_blueprint(bp)

    @app.context_processor
    def _inject_user():
        return {"current_user": g.get("user"), "local_mode": settings.local_mode}
