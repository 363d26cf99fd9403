"""Encryption of users' bring-your-own provider keys.

Each server key-encryption key (KEK) is never used directly: a per-user Fernet key is derived from
it with HKDF, with the user id in the `info`. A ciphertext therefore decrypts only for the user it
was written for; copying a row to another user's id yields "re-enter this key", not their key.
Several KEKs make a MultiFernet: the first encrypts, all decrypt, and `rotate` re-encrypts under
the first.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyUnreadable(Exception):
    """The stored value cannot be decrypted (tampered, another user's, or an unknown KEK)."""


@dataclass(frozen=True)
class ProviderField:
    """One value a user can store: a secret key or a plain provider setting."""

    name: str
    label: str
    provider: str
    secret: bool
    help: str = ""


PROVIDER_FIELDS: tuple[ProviderField, ...] = (
    ProviderField("livekit_url", "LiveKit URL", "livekit", False, "wss://your-project.livekit.cloud"),
    ProviderField("livekit_api_key", "LiveKit API key", "livekit", True),
    ProviderField("livekit_api_secret", "LiveKit API secret", "livekit", True),
    ProviderField("openai", "OpenAI API key", "openai", True, "Used for the interviewer's LLM and voice."),
    ProviderField("deepgram", "Deepgram API key", "deepgram", True, "Used for speech-to-text."),
    ProviderField("llm_base_url", "LLM base URL", "openai", False, "OpenAI-compatible, e.g. Ollama or vLLM."),
    ProviderField("llm_model", "LLM model", "openai", False, "Default gpt-4o-mini."),
    ProviderField("stt_base_url", "Whisper-compatible STT base URL", "stt", False, "Leave empty for Deepgram."),
    ProviderField("stt_model", "STT model", "stt", False, "Default nova-3 (Deepgram)."),
    ProviderField("tts_base_url", "TTS base URL", "tts", False, "OpenAI-compatible, e.g. Speaches."),
    ProviderField("tts_model", "TTS model", "tts", False, "Default gpt-4o-mini-tts."),
    ProviderField("tts_voice", "TTS voice", "tts", False, "Default ash."),
)
FIELDS_BY_NAME = {field.name: field for field in PROVIDER_FIELDS}


def last4(value: str) -> str:
    """The last four characters kept beside the ciphertext for display."""
    return value[-4:]


def masked(stored_last4: str) -> str:
    """How a stored secret is shown: never more than its last four characters."""
    return "••••" + stored_last4


def _derive_user_fernet(kek: str, user_id: int) -> Fernet:
    raw_kek = base64.urlsafe_b64decode(kek.encode())
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"mockflow provider key v1 user:{user_id}".encode(),
    ).derive(raw_kek)
    return Fernet(base64.urlsafe_b64encode(derived))


class KeyVault:
    """Encrypts and decrypts provider values, bound to their user."""

    def __init__(self, keks: list[str]) -> None:
        if not keks:
            raise ValueError("at least one key-encryption key is required")
        for kek in keks:
            Fernet(kek)
        self._keks = list(keks)

    def _for_user(self, user_id: int) -> MultiFernet:
        return MultiFernet([_derive_user_fernet(kek, user_id) for kek in self._keks])

    def encrypt(self, user_id: int, plaintext: str) -> str:
        """Ciphertext (ASCII) of `plaintext`, readable only for `user_id`."""
        return self._for_user(user_id).encrypt(plaintext.encode()).decode()

    def decrypt(self, user_id: int, ciphertext: str) -> str:
        """The plaintext, or KeyUnreadable when it was tampered with or is not this user's."""
        try:
            return self._for_user(user_id).decrypt(ciphertext.encode()).decode()
        except (InvalidToken, ValueError):
            raise KeyUnreadable("re-enter this key") from None

    def rotate(self, user_id: int, ciphertext: str) -> str:
        """The same value re-encrypted under the first (newest) key."""
        try:
            return self._for_user(user_id).rotate(ciphertext.encode()).decode()
        except (InvalidToken, ValueError):
            raise KeyUnreadable("re-enter this key") from None
