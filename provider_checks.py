"""The Settings page's "Test" buttons: the smallest real call to each provider, in plain words."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import requests
from livekit import api as livekit_api

from key_vault import FIELDS_BY_NAME

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEEPGRAM_BASE_URL = "https://api.deepgram.com/v1"
CHECK_TIMEOUT_S = 8.0

REQUIRED_VALUES = {
    "livekit": ("livekit_url", "livekit_api_key", "livekit_api_secret"),
    "openai": ("openai",),
    "deepgram": ("deepgram",),
}


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def _message_for_status(status: int, provider: str) -> CheckResult:
    if 200 <= status < 300:
        return CheckResult(True, f"{provider} accepted the key.")
    if status in (401, 403):
        return CheckResult(False, f"{provider} rejected the key. Check that you copied all of it.")
    if status in (402, 429):
        return CheckResult(False, f"{provider} says the quota is used up or too many requests were made. Try later.")
    return CheckResult(False, f"{provider} answered with an unexpected error (HTTP {status}).")


def _unreachable(provider: str) -> CheckResult:
    return CheckResult(False, f"{provider} could not be reached. Check the URL and your server's network.")


def _http_check(provider: str, url: str, authorization: str, timeout: float) -> CheckResult:
    """GET one cheap, authenticated endpoint and put its answer in plain words."""
    try:
        response = requests.get(url, headers={"Authorization": authorization}, timeout=timeout)
    except requests.RequestException:
        return _unreachable(provider)
    return _message_for_status(response.status_code, provider)


def _check_openai(values: dict[str, str], timeout: float) -> CheckResult:
    base_url = values.get("llm_base_url") or OPENAI_BASE_URL
    return _http_check("OpenAI", base_url.rstrip("/") + "/models", f"Bearer {values['openai']}", timeout)


def _check_deepgram(values: dict[str, str], timeout: float, base_url: str) -> CheckResult:
    return _http_check("Deepgram", base_url.rstrip("/") + "/projects", f"Token {values['deepgram']}", timeout)


async def _list_rooms(values: dict[str, str], timeout: float) -> None:
    url = values["livekit_url"].replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    async with livekit_api.LiveKitAPI(
        url, values["livekit_api_key"], values["livekit_api_secret"], timeout=aiohttp.ClientTimeout(total=timeout)
    ) as client:
        await client.room.list_rooms(livekit_api.ListRoomsRequest())


def _check_livekit(values: dict[str, str], timeout: float) -> CheckResult:
    try:
        asyncio.run(_list_rooms(values, timeout))
    except livekit_api.TwirpError as error:
        return _message_for_status(error.status, "LiveKit")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return _unreachable("LiveKit")
    return CheckResult(True, "LiveKit accepted the URL, key and secret.")


def check_provider(
    provider: str,
    values: dict[str, str],
    unreadable: list[str] | tuple[str, ...] = (),
    *,
    timeout: float = CHECK_TIMEOUT_S,
    deepgram_base_url: str = DEEPGRAM_BASE_URL,
) -> CheckResult:
    """Test one provider (`livekit`, `openai` or `deepgram`) with the user's stored values."""
    for name in REQUIRED_VALUES[provider]:
        label = FIELDS_BY_NAME[name].label
        if name in unreadable:
            return CheckResult(False, f"{label} could not be read. Re-enter this key.")
        if not values.get(name):
            return CheckResult(False, f"{label} is missing. Add it above first.")
    if provider == "livekit":
        return _check_livekit(values, timeout)
    if provider == "openai":
        return _check_openai(values, timeout)
    return _check_deepgram(values, timeout, deepgram_base_url)
