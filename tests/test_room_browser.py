"""The interview room in a real browser (Chromium with a fake microphone).

No LiveKit server exists here: the page runs against the real app in local mode, with the real
livekit-client for the connection failures, and with a double of the SDK (served in place of the
vendored bundle) to play every state a real room would cause.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from browser_fixtures import save_screenshot
from interviews import livekit_connect_sources
from room_helpers import (
    LIVEKIT_DOUBLE,
    VENDOR_LIVEKIT,
    install_recording_launcher,
    save_keys,
    save_keys_with_settings_form,
    set_status,
    start_interview,
    use_livekit_double,
)

AGENT_LIVE = {
    "mockflow.status": "live",
    "mockflow.stage": "greeting",
    "mockflow.stage_title": "Greeting",
    "mockflow.stage_index": "0",
    "mockflow.stage_count": "5",
    "lk.agent.state": "listening",
}


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def launcher(browser_app):
    return install_recording_launcher(browser_app)


@pytest.fixture
def room_url(page: Page, live_server, launcher) -> Iterator[str]:
    """A started interview (status `starting`) and its room URL, opened with the SDK double.

    The page must raise no script error while the test drives it.
    """
    save_keys(page, live_server.base_url, "wss://lk.example.test")
    interview_id = start_interview(page, live_server.base_url)
    use_livekit_double(page)
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield live_server.url(f"/interviews/{interview_id}")
    assert script_errors == []


def turn_on_microphone(page: Page) -> None:
    page.get_by_role("button", name="Turn on microphone").click()
    expect(page.locator("#mic-message")).to_contain_text("Microphone on")


def join(page: Page) -> None:
    turn_on_microphone(page)
    page.get_by_role("button", name="Join the interview").click()
    expect(page.locator("#connection-status")).to_have_text("Interviewer joining…")


def join_live(page: Page) -> None:
    join(page)
    page.evaluate("attrs => window.__livekitDouble.agentJoins(attrs)", AGENT_LIVE)
    expect(page.locator("#connection-status")).to_have_text("You are live with the interviewer.")


def double(page: Page, expression: str):
    return page.evaluate(f"() => window.__livekitDouble.{expression}")


def test_microphone_check_shows_a_moving_level(page: Page, room_url):
    page.goto(room_url)
    expect(page.get_by_role("button", name="Join the interview")).to_be_disabled()
    turn_on_microphone(page)
    expect(page.get_by_label("Microphone", exact=True)).to_have_count(1)
    assert page.locator("#mic-select option").count() >= 1
    page.wait_for_function("() => document.getElementById('mic-level').value > 0.02")
    levels = {page.evaluate("() => document.getElementById('mic-level').value") for _ in range(40)}
    assert len(levels) > 1, "the level meter does not move"
    expect(page.get_by_role("button", name="Join the interview")).to_be_enabled()
    expect(page.locator(".room-tip")).to_contain_text("headphones")


def test_denied_microphone_explains_how_to_allow_it(browser_without_microphone_consent, live_server, launcher):
    context = browser_without_microphone_consent.new_context()
    try:
        page = context.new_page()
        save_keys(page, live_server.base_url, "wss://lk.example.test")
        interview_id = start_interview(page, live_server.base_url)
        use_livekit_double(page)
        page.goto(live_server.url(f"/interviews/{interview_id}"))
        page.get_by_role("button", name="Turn on microphone").click()
        expect(page.locator("#mic-message")).to_contain_text("Microphone access was blocked")
        expect(page.get_by_role("button", name="Join the interview")).to_be_disabled()
    finally:
        context.close()


def test_unreachable_livekit_says_check_settings(page: Page, live_server, launcher):
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    port = closed_port()
    save_keys_with_settings_form(page, live_server.base_url, f"ws://127.0.0.1:{port}")
    page.goto(live_server.url("/interviews/new"))
    page.fill("#candidate_name", "Ada")
    page.fill("#role", "Backend engineer")
    page.get_by_role("button", name="Start interview").click()
    page.wait_for_url(re.compile(r"/interviews/[^/]+$"))
    csp = page.request.get(page.url).headers["content-security-policy"]
    assert f"connect-src 'self' ws://127.0.0.1:{port} http://127.0.0.1:{port};" in csp
    turn_on_microphone(page)
    page.get_by_role("button", name="Join the interview").click()
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("LiveKit could not be reached", timeout=15_000)
    expect(problem.get_by_role("link", name="Check Settings")).to_have_attribute("href", "/settings")
    expect(problem.get_by_role("button", name="Rejoin the interview")).to_be_visible()
    assert len(launcher.launched) == 1
    assert script_errors == []


def test_the_double_speaks_the_real_sdk_names(page: Page, room_url):
    """The SDK double's event names and enum values are the pinned livekit-client's."""
    page.unroute(VENDOR_LIVEKIT)
    page.goto(room_url)
    page.wait_for_function("() => window.LivekitClient && window.LivekitClient.Room")
    mismatches = page.evaluate(
        """source => {
            const real = window.LivekitClient;
            new Function(source)();
            const fake = window.LivekitClient;
            window.LivekitClient = real;
            const wrong = [];
            for (const group of ['RoomEvent', 'TrackEvent', 'DisconnectReason', 'ConnectionErrorReason', 'ParticipantKind']) {
                for (const [name, value] of Object.entries(fake[group])) {
                    if (real[group][name] !== value) wrong.push(`${group}.${name}`);
                }
            }
            return wrong;
        }""",
        LIVEKIT_DOUBLE.read_text(encoding="utf-8"),
    )
    assert mismatches == []


@pytest.mark.parametrize(
    ("failure", "title", "settings_link"),
    [
        ({"message": "invalid token: token is expired (exp)", "reason": 0, "status": 401},
         "Your access to the room expired", False),
        ({"message": "invalid API key", "reason": 0, "status": 401}, "LiveKit refused your keys", True),
    ],
)
def test_refused_join_names_the_next_step(page: Page, room_url, failure, title, settings_link):
    page.goto(room_url)
    turn_on_microphone(page)
    page.evaluate("failure => { window.__livekitDouble.connectFailure = failure; }", failure)
    page.get_by_role("button", name="Join the interview").click()
    problem = page.get_by_role("alert")
    expect(problem.get_by_role("heading")).to_have_text(title)
    expect(problem.get_by_role("link", name="Check Settings")).to_have_count(1 if settings_link else 0)
    page.evaluate("() => { window.__livekitDouble.connectFailure = null; }")
    problem.get_by_role("button", name="Rejoin the interview").click()
    expect(page.locator("#connection-status")).to_have_text("Interviewer joining…")
    expect(problem).to_be_hidden()


def test_failed_interview_shows_its_reason(page: Page, room_url, browser_app):
    page.goto(room_url)
    interview_id = room_url.rsplit("/", 1)[1]
    set_status(browser_app, interview_id, "failed", "Your OpenAI key was rejected.")
    ended = page.locator("#ended")
    expect(ended).to_be_visible(timeout=10_000)
    expect(ended).to_contain_text("The interviewer could not start")
    expect(ended).to_contain_text("Your OpenAI key was rejected.")
    expect(ended.get_by_role("link", name="Check Settings")).to_be_visible()
    expect(ended.get_by_role("link", name="See your transcript and feedback")).to_have_attribute(
        "href", f"/interviews/{interview_id}"
    )
    expect(page.locator("#prejoin")).to_be_hidden()


def test_join_fetches_a_token_and_publishes_the_chosen_microphone(page: Page, room_url):
    page.goto(room_url)
    with page.expect_response(re.compile(r"/api/interviews/[^/]+/token$")) as token_response:
        join(page)
    grant = token_response.value.json()
    connects = double(page, "connectCalls")
    assert connects == [{"url": "wss://lk.example.test", "token": grant["token"]}]
    assert double(page, "startAudioCalls") == 1
    selected = page.locator("#mic-select").input_value()
    assert double(page, "microphoneCalls") == [{"enabled": True, "options": {"deviceId": selected}}]


def test_live_room_renders_stages_timers_voices_and_captions(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    stages = page.locator("#stage-list li")
    expect(stages.first).to_have_attribute("aria-current", "step")
    expect(page.locator("#stage-announcer")).to_have_text(re.compile(r"^Stage 1 of 5: Greeting$"))

    page.evaluate("""() => window.__livekitDouble.setAgentAttributes({
        'mockflow.stage': 'self_intro', 'mockflow.stage_title': 'Self-introduction', 'mockflow.stage_index': '1',
        'mockflow.stage_deadline_ms': String(Date.now() + 90_000), 'lk.agent.state': 'speaking'})""")
    current = page.locator("#stage-list li[aria-current=step]")
    expect(current).to_have_count(1)
    expect(page.locator("#stage-announcer")).to_have_text("Stage 2 of 5: Self-introduction")
    expect(page.locator("#stage-list li").first).to_have_class(re.compile("stage-done"))
    expect(page.locator("#stage-countdown")).to_have_text(re.compile(r"^1:(2\d|30)$"))
    expect(page.locator("#elapsed")).to_have_text(re.compile(r"^0:\d\d$"))
    expect(page.locator("#agent-state")).to_have_text("Speaking")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#voice-agent .voice-bars span')].some(s => s.style.transform !== 'scaleY(0.080)')"
    )

    page.evaluate("() => window.__livekitDouble.agentSays('seg-a1', ['Hello Ada, ', 'tell me ', 'about <b>you</b>.'])")
    page.evaluate("() => window.__livekitDouble.candidateSays('seg-u1', 'I led the', false)")
    expect(page.locator("#interim-candidate")).to_have_text("I led the")
    page.evaluate("() => window.__livekitDouble.candidateSays('seg-u1', 'I led the billing rewrite.', true)")
    log = page.get_by_role("log")
    expect(log.locator("p:visible")).to_have_text(
        ["Interviewer: Hello Ada, tell me about <b>you</b>.", "You: I led the billing rewrite."]
    )
    assert log.locator("b").count() == 0, "caption text must never be parsed as HTML"
    expect(page.locator("#interim-candidate")).to_have_text("")
    assert page.locator(".captions-interim").get_attribute("aria-hidden") == "true"

    page.evaluate("() => window.__livekitDouble.speakersChanged(true)")
    expect(page.locator("#candidate-state")).to_have_text("Speaking")
    save_screenshot(page, "room-live-1280x800")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "room-live-390x844")


def test_skip_and_end_call_the_agent_and_lead_to_feedback(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    page.get_by_role("button", name="Skip stage").click()
    expect(page.locator("#control-status")).to_have_text("Moving on to the next stage.")

    page.keyboard.press("Escape")
    page.get_by_role("button", name="End interview").click()
    dialog = page.get_by_role("dialog", name="End the interview now?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep going")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert [call["method"] for call in double(page, "rpcCalls")] == ["skip_stage"]

    page.get_by_role("button", name="End interview").click()
    dialog.get_by_role("button", name="End interview").click()
    expect(page.locator("#ended-title")).to_have_text("You ended the interview")
    expect(page.locator("#ended-title")).to_be_focused()
    calls = double(page, "rpcCalls")
    assert calls == [
        {"destinationIdentity": "interviewer-0123456789ab", "method": "skip_stage", "payload": "{}", "responseTimeout": 8000},
        {"destinationIdentity": "interviewer-0123456789ab", "method": "end_interview", "payload": "{}", "responseTimeout": 8000},
    ]
    assert double(page, "disconnectCalls") == 1
    interview_path = "/interviews/" + room_url.rsplit("/", 1)[1]
    expect(page.get_by_role("link", name="See your transcript and feedback")).to_have_attribute("href", interview_path)


def test_refused_skip_says_why(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    page.evaluate("() => { window.__livekitDouble.rpcFailure = 'the closing stage cannot be skipped'; }")
    page.get_by_role("button", name="Skip stage").click()
    expect(page.locator("#control-status")).to_have_text("Could not skip this stage: the closing stage cannot be skipped.")


def test_network_drop_reconnects_or_offers_a_rejoin(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    double(page, "reconnecting()")
    expect(page.locator("#connection-status")).to_have_text("Connection lost. Reconnecting…")
    double(page, "reconnected()")
    expect(page.locator("#connection-status")).to_have_text("You are live with the interviewer.")

    double(page, "dropConnection()")
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("The connection dropped")
    with page.expect_response(re.compile(r"/api/interviews/[^/]+/token$")) as token_response:
        problem.get_by_role("button", name="Rejoin the interview").click()
    assert token_response.value.status == 200
    expect(page.locator("#connection-status")).to_have_text("Interviewer joining…")
    assert len(double(page, "connectCalls")) == 2
    expect(problem).to_be_hidden()


def test_agent_leaving_ends_the_room_with_a_way_to_the_transcript(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    double(page, "agentLeaves()")
    expect(page.locator("#ended-title")).to_have_text("The interviewer left")
    expect(page.locator("#ended")).to_contain_text("Your transcript so far is saved.")
    expect(page.locator("#live")).to_be_hidden()


def test_time_limit_ends_the_room_with_the_stored_reason(page: Page, room_url, browser_app):
    page.goto(room_url)
    join_live(page)
    page.evaluate("() => window.__livekitDouble.setAgentAttributes({'mockflow.status': 'interrupted'})")
    expect(page.locator("#ended-title")).to_have_text("The interview was interrupted")
    expect(page.locator("#ended-title")).to_be_focused()
    assert double(page, "disconnectCalls") == 1
    set_status(browser_app, room_url.rsplit("/", 1)[1], "interrupted", "time limit")
    expect(page.locator("#ended-title")).to_have_text("Time is up", timeout=10_000)
    expect(page.locator("#ended")).to_contain_text("The interview reached its time limit.")


def test_agent_failure_mid_way_shows_its_reason(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    page.evaluate("""() => window.__livekitDouble.setAgentAttributes({
        'mockflow.status': 'failed', 'mockflow.failure_reason': 'Your OpenAI key was rejected.'})""")
    expect(page.locator("#ended-title")).to_have_text("The interviewer stopped")
    expect(page.locator("#ended-message")).to_contain_text("Your OpenAI key was rejected.")


def test_unplugged_microphone_can_be_replaced(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    double(page, "unplugMicrophone()")
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("Your microphone stopped")
    problem.get_by_role("button", name="Choose a microphone").click()
    expect(page.get_by_label("Use another microphone")).to_be_focused()
    page.get_by_role("button", name="Use this microphone").click()
    expect(problem).to_be_hidden()
    assert len(double(page, "restartCalls")) == 1


def test_mute_toggles_the_published_microphone(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    mute = page.get_by_role("button", name="Mute microphone")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#candidate-state")).to_have_text("Muted")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "false")
    enabled = [call["enabled"] for call in double(page, "microphoneCalls")]
    assert enabled == [True, False, True]


def test_blocked_autoplay_offers_a_button(page: Page, room_url):
    page.goto(room_url)
    join_live(page)
    double(page, "blockAudio(true)")
    start_audio = page.get_by_role("button", name="Turn on the interviewer's voice")
    expect(start_audio).to_be_visible()
    page.evaluate("() => { window.__livekitDouble.room.canPlaybackAudio = true; }")
    start_audio.click()
    expect(start_audio).to_be_hidden()
    assert double(page, "startAudioCalls") == 2


@pytest.mark.parametrize(
    ("livekit_url", "sources"),
    [
        ("wss://demo.livekit.cloud", "wss://demo.livekit.cloud https://demo.livekit.cloud"),
        ("https://lk.example.test:7880/rtc", "wss://lk.example.test:7880 https://lk.example.test:7880"),
        ("ws://127.0.0.1:7880", "ws://127.0.0.1:7880 http://127.0.0.1:7880"),
        ("wss://evil.test; script-src *", ""),
        ("javascript:alert(1)", ""),
        ("", ""),
    ],
)
def test_room_csp_allows_only_the_livekit_origin(livekit_url, sources):
    assert livekit_connect_sources(livekit_url) == sources
