"""The security baseline applied to every route, now and later.

CSRF on every state-changing request (forms and JSON via `X-CSRFToken`), security headers with a
strict CSP, rate limits, error pages that never show exception text, and log redaction of anything
that looks like a key.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, g, jsonify, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])

SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9_\-.=+/]{8,}"),
    re.compile(
        r"(?i)\b(api[_-]?key|api[_-]?secret|secret|password|passwd|authorization|client[_-]?secret)"
        r"(\"?\s*[:=]\s*\"?)[^\s\"',}]+"
    ),
    re.compile(r"\b[A-Za-z0-9_\-+/]{36,}={0,2}"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@]*:)[^/\s@]+(?=@)"),
)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Replace anything that looks like a key, token or password with a marker."""
    for pattern in SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


class SecretRedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A bad format string must not make logging raise into the caller.
            message = f"{record.msg} (unformatted arguments: {record.args!r})"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_redaction_installed = False


def install_log_redaction() -> None:
    """Redact every log record of this process, whichever logger or handler it goes through.

    A filter on the root logger would miss records of child loggers, so the record factory is
    wrapped instead: each record is redacted as it is created.
    """
    global _redaction_installed
    if _redaction_installed:
        return
    previous_factory = logging.getLogRecordFactory()
    redacting_filter = SecretRedactingFilter()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        redacting_filter.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _redaction_installed = True


def content_security_policy(extra_connect_src: str = "") -> str:
    """This site only; `connect-src` may add the user's LiveKit URL on the interview room."""
    connect_src = "'self'" + (f" {extra_connect_src}" if extra_connect_src else "")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self' blob:; connect-src {connect_src}; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _set_security_headers(response):
    response.headers["Content-Security-Policy"] = content_security_policy(
        g.get("csp_connect_src", "")
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = (
        "microphone=(self), camera=(), geolocation=(), payment=(), usb=()"
    )
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


ERROR_MESSAGES = {
    400: "That request could not be understood.",
    401: "Please sign in first.",
    403: "You do not have access to this page.",
    404: "There is nothing here.",
    405: "That action is not allowed here.",
    413: "That upload is too large.",
    429: "Too many requests. Please wait a minute and try again.",
    500: "Something went wrong on our side. Please try again.",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json


def error_response(status: int, message: str | None = None):
    """A page or JSON body with a plain message and never any exception text."""
    message = message or ERROR_MESSAGES.get(status, ERROR_MESSAGES[500])
    if wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, message=message), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_error(_error):
        return error_response(400, "Your form expired or was sent from elsewhere. Reload and try again.")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        return error_response(status, ERROR_MESSAGES.get(status))

    @app.errorhandler(Exception)
    def _unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)


def init_app(app: Flask) -> None:
    """Install CSRF, limiter, headers, error handlers and log redaction on the app."""
    install_log_redaction()
    settings = app.config["SETTINGS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage_uri)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"])
    csrf.init_app(app)
    limiter.init_app(app)
    app.after_request(_set_security_headers)
    _register_error_handlers(app)
