"""Typed MockFlow settings, read once from the environment and `.env`.

Every setting is listed and explained in `env.template`. Development creates its own secrets once
in `instance/`; production (`MOCKFLOW_ENV=production`) refuses to start without them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"
GOOGLE_ISSUER = "https://accounts.google.com"


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message is one line naming the setting."""


class Settings(BaseSettings):
    """All settings of the web app, the worker manager and the agent host."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    mockflow_env: Literal["development", "production"] = "development"
    secret_key: str = ""
    key_encryption_keys: str = Field(
        default="", description="Comma-separated Fernet keys; the first one encrypts."
    )
    database_url: str = ""
    instance_path: Path = DEFAULT_INSTANCE_PATH

    auth_mode: Literal["", "oidc", "local"] = ""
    oidc_issuer: str = GOOGLE_ISSUER
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_provider_name: str = ""

    worker_mode: Literal["subprocess", "dispatch"] = "subprocess"
    max_concurrent_interviews: int = Field(default=0, ge=0, description="0: chosen from the machine's memory")
    daily_interview_minutes: int = Field(default=0, ge=0, description="0: no daily cap")
    warm_workers: int = Field(default=1, ge=0)
    warm_max_age_s: int = Field(default=1800, ge=60)
    interview_grace_s: int = Field(default=120, ge=0)
    heartbeat_timeout_s: int = Field(default=60, ge=5)
    watchdog_interval_s: int = Field(default=15, ge=0)

    ratelimit_storage_uri: str = "memory://"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 5000

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        return normalise_database_url(value) if value else value

    @property
    def is_production(self) -> bool:
        return self.mockflow_env == "production"

    @property
    def encryption_keys(self) -> list[str]:
        return [key.strip() for key in self.key_encryption_keys.split(",") if key.strip()]

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_client_id and self.oidc_client_secret)

    @property
    def local_mode(self) -> bool:
        """Single local user, no sign-in page: explicit, or implied by a missing OIDC client."""
        if self.auth_mode:
            return self.auth_mode == "local"
        return not self.oidc_configured

    @property
    def sign_in_provider_name(self) -> str:
        if self.oidc_provider_name:
            return self.oidc_provider_name
        return "Google" if self.oidc_issuer.rstrip("/") == GOOGLE_ISSUER else "your identity provider"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_path / 'mockflow.db'}"


def normalise_database_url(url: str) -> str:
    """Accept the `postgres://` and `postgresql://` URLs that Supabase and Heroku hand out.

    SQLAlchemy wants an explicit driver; psycopg 3 is the one installed.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_loopback_host(host: str) -> bool:
    """True for addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_or_create_secret(path: Path, make_secret) -> str:
    """Read a development secret from `path`, creating it once with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        secret = make_secret()
        handle.write(secret)
    return secret


def _provision_development_secrets(settings: Settings) -> Settings:
    updates: dict[str, str] = {}
    if not settings.secret_key:
        updates["secret_key"] = _read_or_create_secret(
            settings.instance_path / "secret_key", lambda: os.urandom(32).hex()
        )
    if not settings.encryption_keys:
        updates["key_encryption_keys"] = _read_or_create_secret(
            settings.instance_path / "key_encryption_key", lambda: Fernet.generate_key().decode()
        )
    return settings.model_copy(update=updates) if updates else settings


def validate_production(settings: Settings) -> None:
    """Fail closed: name the first missing or unsafe production setting."""
    if not settings.secret_key:
        raise ConfigError("SECRET_KEY is required in production")
    if not settings.encryption_keys:
        raise ConfigError("KEY_ENCRYPTION_KEYS is required in production")
    for key in settings.encryption_keys:
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError("KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key") from None
        if key == settings.secret_key:
            raise ConfigError("KEY_ENCRYPTION_KEYS must differ from SECRET_KEY")
    if settings.auth_mode != "local" and not settings.oidc_configured:
        raise ConfigError(
            "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are required in production (or AUTH_MODE=local)"
        )
    if settings.auth_mode == "oidc" and not settings.oidc_configured:
        raise ConfigError("AUTH_MODE=oidc needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")


def load_settings(env_file: str | None = ".env", **overrides) -> Settings:
    """Read settings once; create development secrets or refuse an unsafe production setup.

    Tests pass `env_file=None` so a developer's `.env` cannot leak into them.
    """
    settings = Settings(_env_file=env_file, **overrides)
    if settings.is_production:
        validate_production(settings)
        return settings
    if settings.auth_mode == "oidc" and not settings.oidc_configured:
        raise ConfigError("AUTH_MODE=oidc needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    return _provision_development_secrets(settings)
