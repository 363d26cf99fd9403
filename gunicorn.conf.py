"""Gunicorn settings for self-hosters: `gunicorn -c gunicorn.conf.py app:app`.

Threaded workers (gthread), so one slow request (a provider key test, an upload being parsed) does
not block the site. Bind to loopback behind a reverse proxy; set GUNICORN_BIND to change it.
"""

import os
import sys

from auth_helpers import check_local_mode_binding
from config import ConfigError, load_settings

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 60
graceful_timeout = 30
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"


def _host_of(address: str) -> str:
    if address.startswith("unix:"):
        return "localhost"
    host, _, _port = address.rpartition(":")
    return host.strip("[]")


def on_starting(server) -> None:
    """Fail closed before any worker starts: unsafe settings stop the master with one line."""
    try:
        settings = load_settings()
        check_local_mode_binding(settings, [_host_of(address) for address in server.cfg.bind])
    except ConfigError as error:
        sys.exit(f"MockFlow refuses to start: {error}")
