"""Landing page, dashboard and the health check."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, render_template, redirect, request, url_for

import results_views
import store
from auth_helpers import current_user, login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
def landing():
    if current_user() is not None and current_app.config["SETTINGS"].local_mode:
        return redirect(url_for("pages.dashboard"))
    return render_template("landing.html")


@bp.get("/dashboard")
@login_required
def dashboard():
    """History (filterable by track with ?track=), progress per competency, and the user's data."""
    context = results_views.dashboard_context(current_user().id, request.args.get("track", ""))
    return render_template("dashboard.html", **context)


@bp.get("/api/health")
def health():
    """Liveness plus database reachability, for load balancers and uptime checks."""
    database_ok = store.database_is_reachable(store.get_db())
    body = {
        "status": "ok" if database_ok else "degraded",
        "version": current_app.config["VERSION"],
        "database": "ok" if database_ok else "unreachable",
    }
    return jsonify(body), 200 if database_ok else 503


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
