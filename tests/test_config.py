"""Settings: development provisions its own secrets once; production refuses unsafe setups in one line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import ConfigError, Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETTING_ENV_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the test process's own environment out of Settings."""
    for name in SETTING_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def instance_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "instance"
    monkeypatch.setenv("INSTANCE_PATH", str(path))
    return path


@pytest.fixture
def complete_production(monkeypatch: pytest.MonkeyPatch, instance_path: Path) -> None:
    """A production environment that starts; each refusal test removes or spoils one setting."""
    monkeypatch.setenv("MOCKFLOW_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "production-secret-key-" + "x" * 32)
    monkeypatch.setenv("KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("OIDC_CLIENT_ID", "client-id.apps.example.test")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "client-secret")


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_development_creates_secrets_once_with_private_file_modes(instance_path: Path) -> None:
    first = load_settings(env_file=None)

    secret_file = instance_path / "secret_key"
    key_file = instance_path / "key_encryption_key"
    assert file_mode(secret_file) == 0o600
    assert file_mode(key_file) == 0o600
    assert first.secret_key and secret_file.read_text(encoding="utf-8") == first.secret_key
    assert first.encryption_keys == [key_file.read_text(encoding="utf-8")]
    Fernet(first.encryption_keys[0])
    assert first.encryption_keys[0] != first.secret_key

    second = load_settings(env_file=None)
    assert second.secret_key == first.secret_key
    assert second.encryption_keys == first.encryption_keys
    assert sorted(path.name for path in instance_path.iterdir()) == ["key_encryption_key", "secret_key"]


def test_development_keeps_secrets_it_is_given(instance_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given_key = Fernet.generate_key().decode()
    monkeypatch.setenv("SECRET_KEY", "given-secret")
    monkeypatch.setenv("KEY_ENCRYPTION_KEYS", given_key)

    settings = load_settings(env_file=None)

    assert (settings.secret_key, settings.encryption_keys) == ("given-secret", [given_key])
    assert not instance_path.exists() or list(instance_path.iterdir()) == []


@pytest.mark.usefixtures("complete_production")
def test_complete_production_settings_load_without_writing_secrets(instance_path: Path) -> None:
    settings = load_settings(env_file=None)

    assert settings.is_production
    assert not settings.local_mode
    assert not instance_path.exists() or list(instance_path.iterdir()) == []


@pytest.mark.usefixtures("complete_production")
@pytest.mark.parametrize(
    ("spoil", "named_setting"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"KEY_ENCRYPTION_KEYS": None}, "KEY_ENCRYPTION_KEYS"),
        ({"OIDC_CLIENT_ID": None}, "OIDC_CLIENT_ID"),
        ({"OIDC_CLIENT_SECRET": None}, "OIDC_CLIENT_SECRET"),
        ({"KEY_ENCRYPTION_KEYS": "not-a-fernet-key"}, "KEY_ENCRYPTION_KEYS"),
        ({"KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode() + ",short"}, "KEY_ENCRYPTION_KEYS"),
    ],
    ids=["no-secret-key", "no-kek", "no-oidc-client-id", "no-oidc-client-secret", "kek-not-fernet",
         "second-kek-not-fernet"],
)
def test_production_refuses_a_missing_or_unsafe_setting(
    monkeypatch: pytest.MonkeyPatch, spoil: dict[str, str | None], named_setting: str
) -> None:
    for name, value in spoil.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as refusal:
        load_settings(env_file=None)

    message = str(refusal.value)
    assert named_setting in message
    assert "\n" not in message


@pytest.mark.usefixtures("complete_production")
def test_production_refuses_an_encryption_key_equal_to_the_secret_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = Fernet.generate_key().decode()
    monkeypatch.setenv("SECRET_KEY", shared)
    monkeypatch.setenv("KEY_ENCRYPTION_KEYS", shared)

    with pytest.raises(ConfigError, match="KEY_ENCRYPTION_KEYS must differ from SECRET_KEY") as refusal:
        load_settings(env_file=None)

    assert "\n" not in str(refusal.value)


def test_importing_the_app_in_production_without_secrets_exits_with_one_line(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name not in SETTING_ENV_NAMES}
    env.update(
        MOCKFLOW_ENV="production",
        INSTANCE_PATH=str(tmp_path / "instance"),
        PYTHONPATH=str(PROJECT_ROOT),
    )

    # Run outside the project so no developer `.env` is read.
    result = subprocess.run(
        [sys.executable, "-c", "import app; app.app"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode != 0
    stderr_lines = result.stderr.strip().splitlines()
    assert len(stderr_lines) == 1, result.stderr
    assert "SECRET_KEY" in stderr_lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "secret_key").exists()
