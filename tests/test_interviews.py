"""Interview setup and start: form validation, keys, the start API, caps, and the LiveKit tokens."""

from __future__ import annotations

import io

import jwt
import pytest
from sqlalchemy import func, select
from livekit import api

import store
from conftest import fetch_csrf_token

LIVEKIT_KEY = "APItestkey"
LIVEKIT_SECRET = "test-livekit-secret-" + "s" * 24
GOOD_SETUP = {
    "candidate_name": "Ada Lovelace",
    "role": "Backend engineer",
    "level": "senior",
    "company": "Acme",
    "track": "behavioral",
    "length": "standard",
    "language": "en",
    "resume_text": "Led the billing rewrite.\n\nBuilt a queue for payments.",
    "job_description_text": "We need a backend engineer who owns payments.",
}


class RecordingLauncher:
    """Stands in for the agent launcher: records what it was asked to start."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, dict]] = []

    def __call__(self, interview, values):
        self.launched.append((interview.id, values))

    def close(self) -> None:
        return None


@pytest.fixture
def launcher(app):
    recording = RecordingLauncher()
    app.extensions["worker_launcher"] = recording
    return recording


def store_keys(client, **overrides) -> None:
    values = {
        "livekit_url": "wss://example.livekit.cloud",
        "livekit_api_key": LIVEKIT_KEY,
        "livekit_api_secret": LIVEKIT_SECRET,
        "openai": "sk-test-openai-key-abcd",
        "deepgram": "deepgram-test-key-efgh",
        **overrides,
    }
    token = fetch_csrf_token(client)
    for name, value in values.items():
        response = client.post(f"/settings/{name}", data={"value": value, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)


def start(client, **changes):
    token = fetch_csrf_token(client, "/interviews/new")
    return client.post("/api/interviews", json={**GOOD_SETUP, **changes}, headers={"X-CSRFToken": token})


def test_start_creates_interview_and_hands_it_to_the_launcher(client, app, launcher):
    store_keys(client)
    response = start(client)
    assert response.status_code == 201, response.get_json()
    interview_id = response.get_json()["id"]
    assert [launched_id for launched_id, _ in launcher.launched] == [interview_id]
    assert launcher.launched[0][1]["openai"] == "sk-test-openai-key-abcd"
    with app.extensions["store"].session() as db:
        interview = store.get_interview(db, interview_id)
        assert interview.status == "starting"
        assert interview.room_name.startswith("mf-")
        assert "ada" not in interview.room_name.lower()
        assert [stage["key"] for stage in interview.plan["stages"]][0] == "greeting"
        assert interview.context["role"] == "Backend engineer"
        assert "billing rewrite" in interview.context["resume_text"]


def test_second_start_while_one_runs_answers_409(client, launcher):
    store_keys(client)
    assert start(client).status_code == 201
    second = start(client)
    assert second.status_code == 409
    assert "already have an interview" in second.get_json()["error"]
    assert len(launcher.launched) == 1


def test_full_rooms_answer_503_and_start_nothing(client, app, launcher):
    store_keys(client)
    app.extensions["max_concurrent_interviews"] = 0
    response = start(client)
    assert response.status_code == 503
    assert "all interview rooms are busy" in response.get_json()["error"].lower()
    assert launcher.launched == []


def test_missing_keys_name_what_to_add_and_create_nothing(client, app, launcher):
    page = client.get("/interviews/new").get_data(as_text=True)
    assert "Settings" in page and "OpenAI API key" in page and "Deepgram API key" in page
    response = start(client)
    assert response.status_code == 400
    assert "LiveKit URL" in response.get_json()["error"]
    assert launcher.launched == []
    with app.extensions["store"].session() as db:
        assert db.scalar(select(func.count()).select_from(store.Interview)) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("candidate_name", ""),
        ("candidate_name", "x" * 81),
        ("role", "<script>alert(1)</script>"),
        ("role", ""),
        ("level", "ceo"),
        ("track", "trivia"),
        ("length", "forever"),
        ("language", "tlh"),
        ("company", "c" * 121),
        ("resume_text", "r" * 40_001),
    ],
)
def test_bad_fields_are_refused_next_to_the_field(client, app, launcher, field, value):
    store_keys(client)
    token = fetch_csrf_token(client, "/interviews/new")
    response = client.post("/interviews/new", data={**GOOD_SETUP, field: value, "action": "start", "csrf_token": token})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'id="error-{field}"' in page
    assert "<script>alert(1)</script>" not in page
    assert launcher.launched == []


def test_form_start_redirects_to_the_room(client, launcher):
    store_keys(client)
    token = fetch_csrf_token(client, "/interviews/new")
    response = client.post("/interviews/new", data={**GOOD_SETUP, "action": "start", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/interviews/")


def test_upload_is_extracted_into_an_editable_box(client):
    token = fetch_csrf_token(client, "/interviews/new")
    data = {**GOOD_SETUP, "resume_text": "", "action": "extract", "csrf_token": token,
            "resume_file": (io.BytesIO("Résumé: led the payments team.\n".encode("utf-8")), "cv.txt")}
    response = client.post("/interviews/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="resume_text"' in page and "led the payments team." in page


def test_candidate_token_carries_exactly_the_listed_grants(client, launcher):
    store_keys(client)
    interview_id = start(client).get_json()["id"]
    response = client.get(f"/api/interviews/{interview_id}/token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    claims = api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(body["token"])
    grants = claims.video
    assert grants.room_join is True and grants.room.startswith("mf-")
    assert grants.can_publish_sources == ["microphone"]
    assert grants.can_subscribe is True
    assert not any([grants.room_admin, grants.room_create, grants.room_list, grants.room_record,
                    grants.can_update_own_metadata, grants.agent])
    assert claims.identity == body["identity"]
    assert "ada" not in claims.identity.lower() and "@" not in claims.identity
    assert not claims.name
    raw = jwt.decode(body["token"], LIVEKIT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert raw["exp"] - raw["nbf"] <= 600


def test_agent_token_is_scoped_to_the_room_for_the_interview_length():
    from livekit_tokens import agent_token

    token = agent_token(LIVEKIT_KEY, LIVEKIT_SECRET, "mf-room", "abcdef0123456789", max_duration_s=900)
    claims = api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(token)
    assert claims.kind == "agent" and claims.video.agent is True
    assert claims.video.room == "mf-room" and claims.video.room_join is True
    assert not any([claims.video.room_admin, claims.video.room_create, claims.video.room_list, claims.video.room_record])
    raw = jwt.decode(token, LIVEKIT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
    assert 900 <= raw["exp"] - raw["nbf"] <= 900 + 600


def test_token_route_refuses_ended_interviews(client, app, launcher):
    store_keys(client)
    interview_id = start(client).get_json()["id"]
    with app.extensions["store"].session() as db:
        store.set_interview_status(db, interview_id, "completed")
    assert client.get(f"/api/interviews/{interview_id}/token").status_code == 409


def test_name_never_travels_in_a_url_or_the_room(client, launcher):
    store_keys(client)
    body = start(client).get_json()
    token_body = client.get(f"/api/interviews/{body['id']}/token").get_json()
    claims = api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(token_body["token"])
    assert "Ada" not in body["url"]
    assert "Ada" not in claims.identity and "Ada" not in claims.video.room
