"""The provider fakes speak the real protocols: each is driven here by the real client library."""

from __future__ import annotations

import io
import json
import threading
import wave
from collections.abc import Iterator

import aiohttp
import numpy as np
import openai
import pydantic
import pytest
import requests
from livekit import api, rtc
from livekit.agents import APIConnectOptions, APIStatusError, llm, stt
from livekit.agents.llm import function_tool
from livekit.plugins import deepgram
from livekit.plugins import openai as lk_openai

from fakes import (
    DEFAULT_DEEPGRAM_KEY,
    DEFAULT_LIVEKIT_API_KEY,
    DEFAULT_LIVEKIT_API_SECRET,
    DEFAULT_OPENAI_KEY,
    ErrorReply,
    FakeDeepgram,
    FakeLiveKit,
    FakeOpenAI,
    RawReply,
    Utterance,
    tool_call_reply,
    twirp_path,
)
from fakes.fake_openai import CHAT_PATH, DEFAULT_CHAT_REPLY, SPEECH_PATH, TRANSCRIPTIONS_PATH, TTS_SAMPLE_RATE

NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)
STT_SAMPLE_RATE = 16_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _client(fake: FakeOpenAI, api_key: str = DEFAULT_OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=api_key, max_retries=0)


def _user_says(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are an interviewer."}, {"role": "user", "content": text}]


# --- OpenAI: the `openai` client ----------------------------------------------------------------


def test_chat_without_streaming_returns_the_scripted_text_and_records_the_request(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.chat_script.append("Tell me about a project you are proud of.")

    with _client(fake_openai) as client:
        completion = client.chat.completions.create(model="gpt-4.1-mini", messages=_user_says("Hi"))

    assert completion.choices[0].message.content == "Tell me about a project you are proud of."
    assert completion.choices[0].finish_reason == "stop"
    recorded = fake_openai.requests.last(CHAT_PATH)
    assert recorded.authorization == f"Bearer {DEFAULT_OPENAI_KEY}"
    assert recorded.body["messages"][-1] == {"role": "user", "content": "Hi"}


def test_script_runs_out_into_the_default_reply(fake_openai: FakeOpenAI) -> None:
    with _client(fake_openai) as client:
        completion = client.chat.completions.create(model="gpt-4.1-mini", messages=_user_says("Hi"))

    assert completion.choices[0].message.content == DEFAULT_CHAT_REPLY


class Score(pydantic.BaseModel):
    score: int
    evidence: str


def test_responder_answers_a_json_schema_request_that_the_client_parses() -> None:
    def responder(body: dict) -> str:
        assert body["response_format"]["type"] == "json_schema"
        return json.dumps({"score": 4, "evidence": body["messages"][-1]["content"]})

    with FakeOpenAI(responder=responder) as fake, _client(fake) as client:
        completion = client.chat.completions.parse(
            model="gpt-4.1-mini", messages=_user_says("I led the migration."), response_format=Score
        )

    assert completion.choices[0].message.parsed == Score(score=4, evidence="I led the migration.")


def test_chat_streams_text_chunks_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_script.append("Great, let us begin the interview.")

    with _client(fake_openai) as client:
        stream = client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=_user_says("Ready"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Great, let us begin the interview."
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) == 6
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_models_list_accepts_the_key_and_rejects_another(fake_openai: FakeOpenAI) -> None:
    with _client(fake_openai) as client:
        assert "gpt-4.1-mini" in [model.id for model in client.models.list()]

    with (
        _client(fake_openai, api_key="sk-wrong") as client,
        pytest.raises(openai.AuthenticationError) as rejected,
    ):
        client.models.list()

    assert rejected.value.status_code == 401
    assert rejected.value.code == "invalid_api_key"
    assert [request.authorization for request in fake_openai.requests.all()] == [
        f"Bearer {DEFAULT_OPENAI_KEY}",
        "Bearer sk-wrong",
    ]


def test_models_list_reports_an_exhausted_quota() -> None:
    with (
        FakeOpenAI(quota_exceeded=True) as fake,
        _client(fake) as client,
        pytest.raises(openai.RateLimitError) as limited,
    ):
        client.models.list()

    assert limited.value.status_code == 429
    assert limited.value.code == "insufficient_quota"


def test_scripted_http_error_reaches_the_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_script.append(ErrorReply(status=500, message="The server had an error"))

    with _client(fake_openai) as client, pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-4.1-mini", messages=_user_says("Hi"))

    assert failed.value.status_code == 500
    assert "The server had an error" in failed.value.message


def test_raw_reply_is_sent_unchanged(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_script.append(RawReply(body=b"data: {not json\n\n"))

    response = requests.post(
        f"{fake_openai.base_url}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": _user_says("Hi"), "stream": True},
        headers={"Authorization": f"Bearer {DEFAULT_OPENAI_KEY}"},
        timeout=5,
    )

    assert response.status_code == 200
    assert response.content == b"data: {not json\n\n"


def _wav(duration_s: float, sample_rate: int = STT_SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.zeros(int(duration_s * sample_rate), dtype="<i2").tobytes())
    return buffer.getvalue()


def test_transcriptions_return_the_scripted_transcripts() -> None:
    with (
        FakeOpenAI(transcripts=["I have five years of experience.", "Thank you."]) as fake,
        _client(fake) as client,
    ):
        plain = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", _wav(0.5)))
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=("b.wav", _wav(1.5)), response_format="verbose_json"
        )
        recorded = fake.requests.for_path(TRANSCRIPTIONS_PATH)

    assert plain.text == "I have five years of experience."
    assert (verbose.text, verbose.duration) == ("Thank you.", 1.5)
    assert recorded[0].body["model"] == "gpt-4o-transcribe"
    assert recorded[0].body["file"]["filename"] == "a.wav"


def test_recorder_waits_for_a_request_made_in_the_background(fake_openai: FakeOpenAI) -> None:
    def check_key() -> None:
        with _client(fake_openai) as client:
            client.models.list()

    worker = threading.Thread(target=check_key)
    worker.start()
    arrived = fake_openai.requests.wait_for("/v1/models")
    worker.join()

    assert arrived[0].authorization == f"Bearer {DEFAULT_OPENAI_KEY}"
    with pytest.raises(AssertionError, match="expected 1 request"):
        fake_openai.requests.wait_for(SPEECH_PATH, timeout=0.05)


# --- OpenAI: livekit-plugins-openai -------------------------------------------------------------


@function_tool
async def record_candidate_name(name: str) -> str:
    """Record the candidate's name.

    Args:
        name: The candidate's first name.
    """
    return name


def _chat_context(text: str) -> llm.ChatContext:
    context = llm.ChatContext.empty()
    context.add_message(role="system", content="You are an interviewer.")
    context.add_message(role="user", content=text)
    return context


@pytest.mark.anyio
async def test_livekit_llm_streams_text_then_a_tool_call() -> None:
    async with FakeOpenAI(
        chat_script=[
            "Welcome! What is your name?",
            tool_call_reply("record_candidate_name", {"name": "Alice"}),
        ]
    ) as fake:
        model = lk_openai.LLM(model="gpt-4.1-mini", base_url=fake.base_url, api_key=DEFAULT_OPENAI_KEY)
        async with model.chat(chat_ctx=_chat_context("Hello")) as stream:
            greeting = await stream.collect()
        async with model.chat(
            chat_ctx=_chat_context("My name is Alice"), tools=[record_candidate_name], conn_options=NO_RETRY
        ) as stream:
            tool_turn = await stream.collect()
        await model.aclose()
        first, second = fake.requests.for_path(CHAT_PATH)

    assert greeting.text == "Welcome! What is your name?"
    assert greeting.usage is not None and greeting.usage.completion_tokens == 5
    assert [(call.name, json.loads(call.arguments)) for call in tool_turn.tool_calls] == [
        ("record_candidate_name", {"name": "Alice"})
    ]
    assert first.body["stream"] is True and first.body["stream_options"] == {"include_usage": True}
    assert [tool["function"]["name"] for tool in second.body["tools"]] == ["record_candidate_name"]


@pytest.mark.anyio
@pytest.mark.parametrize(("model_name", "stream_format"), [("tts-1", "audio"), ("gpt-4o-mini-tts", "sse")])
async def test_livekit_tts_receives_24khz_audio_sized_by_the_text(
    model_name: str, stream_format: str
) -> None:
    text = "Welcome to your interview."
    async with FakeOpenAI() as fake:
        tts = lk_openai.TTS(
            model=model_name, response_format="pcm", base_url=fake.base_url, api_key=DEFAULT_OPENAI_KEY
        )
        async with tts.synthesize(text, conn_options=NO_RETRY) as stream:
            events = [event async for event in stream]
        await tts.aclose()
        expected_samples = round(fake.speech_duration_s(text) * TTS_SAMPLE_RATE)
        recorded = fake.requests.last(SPEECH_PATH)

    # livekit ends a segment whose audio filled whole frames with a 10 ms silent marker frame.
    audio = [event.frame for event in events if np.frombuffer(event.frame.data, dtype=np.int16).any()]
    assert {event.frame.sample_rate for event in events} == {TTS_SAMPLE_RATE}
    assert sum(frame.samples_per_channel for frame in audio) == expected_samples
    assert events[-1].is_final
    assert events[0].request_id.startswith("req_")
    assert (recorded.body["input"], recorded.body["stream_format"]) == (text, stream_format)


# --- Deepgram -----------------------------------------------------------------------------------


def _speech_then_silence(segments: list[tuple[float, float]], total_s: float) -> np.ndarray:
    """16 kHz int16 audio: quiet background with loud tone-plus-noise bursts over `segments`."""
    rng = np.random.default_rng(7)
    t = np.arange(int(total_s * STT_SAMPLE_RATE)) / STT_SAMPLE_RATE
    audio = rng.normal(0.0, 20.0, t.size)
    for start, end in segments:
        burst = (t >= start) & (t < end)
        audio[burst] += 4000.0 * np.sin(2 * np.pi * 180.0 * t[burst]) + rng.normal(0.0, 800.0, burst.sum())
    return audio.astype(np.int16)


async def _transcribe(
    fake: FakeDeepgram,
    audio: np.ndarray,
    api_key: str = DEFAULT_DEEPGRAM_KEY,
    filler_words: bool = True,
    stop_at: stt.SpeechEventType | None = None,
) -> list[stt.SpeechEvent]:
    """Stream `audio` through the deepgram plugin and collect its events.

    Without `stop_at` the stream runs to its natural end, which the plugin's 5 s keepalive loop delays;
    with it, collection stops at the first event of that type, as a live agent would keep going.
    """
    async with aiohttp.ClientSession() as session:
        recognizer = deepgram.STT(
            api_key=api_key, base_url=fake.listen_url, http_session=session, filler_words=filler_words
        )
        stream = recognizer.stream(conn_options=NO_RETRY)
        frame_samples = STT_SAMPLE_RATE // 50
        for start in range(0, audio.size, frame_samples):
            chunk = audio[start : start + frame_samples]
            stream.push_frame(rtc.AudioFrame(chunk.tobytes(), STT_SAMPLE_RATE, 1, chunk.size))
        stream.end_input()
        events: list[stt.SpeechEvent] = []
        async for event in stream:
            if event.type != stt.SpeechEventType.RECOGNITION_USAGE:
                events.append(event)
            if event.type == stop_at:
                break
        await stream.aclose()
    return events


def _finals(events: list[stt.SpeechEvent]) -> list[stt.SpeechData]:
    return [event.alternatives[0] for event in events if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT]


@pytest.mark.anyio
async def test_deepgram_stream_finalises_each_speech_segment_with_the_scripted_words() -> None:
    audio = _speech_then_silence([(0.3, 1.3), (1.8, 2.6), (3.0, 3.4)], total_s=3.4)
    script = [Utterance("So I think, um,", end_of_speech=False), "I would use a queue.", "Thanks."]
    async with FakeDeepgram(script=script) as fake:
        events = await _transcribe(fake, audio)
        session = fake.sessions[0]
        handshake = fake.requests.last("/v1/listen")

    kinds = [event.type for event in events if event.type != stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert kinds == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
    ]
    finals = _finals(events)
    assert [final.text for final in finals] == ["So I think, um,", "I would use a queue.", "Thanks."]
    assert [str(word) for word in finals[0].words] == ["So", "I", "think,", "um,"]
    assert (finals[0].words[0].start_time, finals[0].words[-1].end_time) == pytest.approx(
        (0.3, 1.3), abs=1e-3
    )
    assert (finals[1].words[0].start_time, finals[1].words[-1].end_time) == pytest.approx(
        (1.8, 2.6), abs=1e-3
    )
    assert any(event.type == stt.SpeechEventType.INTERIM_TRANSCRIPT for event in events)
    assert handshake.authorization == f"Token {DEFAULT_DEEPGRAM_KEY}"
    assert handshake.query["encoding"] == "linear16" and handshake.query["sample_rate"] == "16000"
    assert session.audio_bytes == audio.size * 2
    assert session.control_messages[-2:] == ["Finalize", "CloseStream"]
    final_results = [message for message in session.sent_of_type("Results") if message["is_final"]]
    assert [(message["speech_final"], message["from_finalize"]) for message in final_results] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    assert session.sent[-1]["type"] == "Metadata"


@pytest.mark.anyio
async def test_deepgram_drops_filler_words_unless_the_client_asks_for_them() -> None:
    audio = _speech_then_silence([(0.2, 1.0)], total_s=1.6)
    async with FakeDeepgram(script=["Uh, I worked on payments."]) as fake:
        events = await _transcribe(fake, audio, filler_words=False, stop_at=stt.SpeechEventType.END_OF_SPEECH)
        query = fake.requests.last("/v1/listen").query

    assert query["filler_words"] == "false"
    assert [final.text for final in _finals(events)] == ["I worked on payments."]


@pytest.mark.anyio
async def test_deepgram_rejects_a_bad_key_at_the_handshake() -> None:
    async with FakeDeepgram() as fake:
        with pytest.raises(APIStatusError) as rejected:
            await _transcribe(fake, _speech_then_silence([], total_s=0.2), api_key="wrong-key")

    assert rejected.value.status_code == 401
    assert fake.sessions == []


def test_deepgram_projects_answers_by_key_and_quota() -> None:
    with FakeDeepgram() as fake:
        good = requests.get(
            f"{fake.base_url}/projects", headers={"Authorization": f"Token {DEFAULT_DEEPGRAM_KEY}"}, timeout=5
        )
        bad = requests.get(f"{fake.base_url}/projects", headers={"Authorization": "Token wrong"}, timeout=5)
        fake.quota_exceeded = True
        limited = requests.get(
            f"{fake.base_url}/projects", headers={"Authorization": f"Token {DEFAULT_DEEPGRAM_KEY}"}, timeout=5
        )

    assert good.status_code == 200 and len(good.json()["projects"]) == 1
    assert (bad.status_code, bad.json()["err_code"]) == (401, "INVALID_AUTH")
    assert limited.status_code == 429


# --- LiveKit server API -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_livekit_api_rooms_and_dispatch_are_served_and_recorded() -> None:
    async with FakeLiveKit() as fake:
        async with api.LiveKitAPI(fake.ws_url, DEFAULT_LIVEKIT_API_KEY, DEFAULT_LIVEKIT_API_SECRET) as client:
            created = await client.room.create_room(
                api.CreateRoomRequest(name="interview-1", empty_timeout=300)
            )
            listed = await client.room.list_rooms(api.ListRoomsRequest(names=["interview-1"]))
            dispatch = await client.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name="interviewer", room="interview-1", metadata='{"id": "i-1"}'
                )
            )
            await client.room.delete_room(api.DeleteRoomRequest(room="interview-1"))
            with pytest.raises(api.TwirpError) as missing:
                await client.room.delete_room(api.DeleteRoomRequest(room="interview-1"))
        recorded = fake.requests.last(twirp_path("AgentDispatchService", "CreateDispatch"))
        remaining_rooms = fake.rooms

    assert [room.name for room in listed.rooms] == ["interview-1"]
    assert listed.rooms[0].sid == created.sid and created.empty_timeout == 300
    assert (dispatch.agent_name, dispatch.room, dispatch.id.startswith("AD_")) == (
        "interviewer",
        "interview-1",
        True,
    )
    assert recorded.body == {"agent_name": "interviewer", "room": "interview-1", "metadata": '{"id": "i-1"}'}
    assert recorded.header("content-type") == "application/protobuf"
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert remaining_rooms == {}


@pytest.mark.anyio
async def test_livekit_api_rejects_a_token_signed_with_another_secret() -> None:
    async with FakeLiveKit() as fake:
        async with api.LiveKitAPI(
            fake.url, DEFAULT_LIVEKIT_API_KEY, "another-secret-of-sufficient-length-x"
        ) as client:
            with pytest.raises(api.TwirpError) as rejected:
                await client.room.list_rooms(api.ListRoomsRequest())
        recorded = fake.requests.last(twirp_path("RoomService", "ListRooms"))

    assert (rejected.value.status, rejected.value.code) == (401, "unauthenticated")
    assert recorded.authorization is not None and recorded.authorization.startswith("Bearer ")


def test_livekit_twirp_answers_json_requests_in_json() -> None:
    token = (
        api.AccessToken(DEFAULT_LIVEKIT_API_KEY, DEFAULT_LIVEKIT_API_SECRET)
        .with_grants(api.VideoGrants(room_create=True))
        .to_jwt()
    )
    with FakeLiveKit() as fake:
        response = requests.post(
            f"{fake.url}{twirp_path('RoomService', 'CreateRoom')}",
            json={"name": "json-room"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        denied = requests.post(
            f"{fake.url}{twirp_path('RoomService', 'ListRooms')}",
            json={},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )

    assert response.status_code == 200 and response.json()["name"] == "json-room"
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
