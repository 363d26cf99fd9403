"""MockFlow web app: `create_app()` for tests and tools, `app` for gunicorn, `python app.py` for development."""

from __future__ import annotations

import logging
import sys

from flask import Flask

import auth_helpers
import interviews
import pages
import results_views
import security
import settings_views
import store
import worker_manager
from config import ConfigError, Settings, is_loopback_host, load_settings

__version__ = "0.1.0"


def _settings_from(test_config: dict | None) -> Settings:
    if test_config is None:
        return load_settings()
    overrides = {
        key.lower(): value for key, value in test_config.items() if key.lower() in Settings.model_fields
    }
    return load_settings(env_file=None, **overrides)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; settings are read once here and fail closed in production."""
    settings = _settings_from(test_config)
    app = Flask(__name__, instance_path=str(settings.instance_path), instance_relative_config=True)
    app.config.from_mapping(
        SETTINGS=settings,
        VERSION=__version__,
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        MAX_CONTENT_LENGTH=5 * 1024 * 1024 + 256 * 1024,
    )
    if test_config is not None:
        app.config.from_mapping(
            {key: value for key, value in test_config.items() if key.lower() not in Settings.model_fields}
        )
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store.init_app(app)
    security.init_app(app)
    auth_helpers.init_app(app)
    settings_views.init_app(app)
    worker_manager.init_app(app)
    interviews.init_app(app)
    results_views.init_app(app)
    pages.init_app(app)
    return app


def _serve_for_development() -> None:
    """`python app.py`: migrate, then serve on loopback with the debugger only there."""
    try:
        development_app = create_app()
    except ConfigError as error:
        sys.exit(f"MockFlow refuses to start: {error}")
    settings: Settings = development_app.config["SETTINGS"]
    try:
        auth_helpers.check_local_mode_binding(settings, [settings.host])
    except ConfigError as error:
        sys.exit(f"MockFlow refuses to start: {error}")
    development_app.extensions["store"].upgrade()
    debug = is_loopback_host(settings.host) and not settings.is_production
    development_app.run(host=settings.host, port=settings.port, debug=debug, use_reloader=False)


def __getattr__(name: str) -> Flask:
    """`app:app` for gunicorn and `flask --app app`, built on first use.

    Built lazily (PEP 562) so that importing `create_app` in tests and tools does not also build
    an app from the process environment.
    """
    if name != "app":
        raise AttributeError(name)
    try:
        built = create_app()
    except ConfigError as error:
        sys.exit(f"MockFlow refuses to start: {error}")
    globals()["app"] = built
    return built


if __name__ == "__main__":
    _serve_for_development()
