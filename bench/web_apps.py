"""WSGI apps that bench/web.py serves with the shipped gunicorn.conf.py, beside `app:app`.

- `hello`: a bare Flask app answering "hello", the floor any Flask app under that config pays.
- `mockflow_without_rate_limits`: MockFlow's own factory with Flask-Limiter switched off. Used only
  for the candidate-token route, whose 30-per-minute limit per client address would otherwise turn
  a load test from one address into a measurement of the 429 path.
Both are built on first attribute access (PEP 562), so importing one does not build the other.
"""

from __future__ import annotations

from flask import Flask


def _hello_app() -> Flask:
    hello_app = Flask("hello")

    @hello_app.get("/")
    def hello() -> str:
        return "hello"

    return hello_app


def __getattr__(name: str) -> Flask:
    if name == "hello":
        built = _hello_app()
    elif name == "mockflow_without_rate_limits":
        from app import create_app

        built = create_app({"RATELIMIT_ENABLED": False})
    else:
        raise AttributeError(name)
    globals()[name] = built
    return built
