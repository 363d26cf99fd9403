"""The interview end-of-turn rules and their livekit-agents adapter."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents.llm import ChatContext

import agent_worker
import turn_taking
from turn_taking import (
    DEFAULT_TIMINGS,
    UNLIKELY_THRESHOLD,
    Ending,
    TranscriptTurnDetector,
    end_of_turn_probability,
    end_of_turn_verdict,
    last_user_text,
    session_turn_handling,
)


@pytest.mark.parametrize(
    ("transcript", "reason"),
    [
        ("So the main thing I did was, um...", "filler"),
        ("So the main thing I did was um", "filler"),
        ("And then after that, uh,", "filler"),
        ("So the main thing I did was uh.", "filler"),
        ("We had three options,", "open punctuation"),
        ("Well, the first thing was…", "open punctuation"),
        ("I was leading the data team -", "open punctuation"),
        ("I think the reason we chose Postgres was because", "continuation word"),
        ("We moved the whole thing to the.", "continuation word"),
        ("I worked on the API and", "continuation word"),
        ("It was mostly about my", "continuation word"),
        ("The hardest part of that project was", "no closing punctuation"),
    ],
)
def test_thinking_pauses_are_unfinished(transcript: str, reason: str) -> None:
    verdict = end_of_turn_verdict(transcript)
    assert verdict.ending is Ending.UNFINISHED
    assert verdict.reason == reason
    assert verdict.probability < UNLIKELY_THRESHOLD


@pytest.mark.parametrize(
    ("transcript", "reason"),
    [
        ("I led a team of four engineers and we rebuilt the payment system.", "full stop"),
        ("Yes.", "full stop"),
        ("I think so.", "full stop"),
        ("That's what it was.", "full stop"),
        ("It took about a year or so.", "full stop"),
        ("Could you repeat the question?", "question or exclamation"),
        ("That was a great team!", "question or exclamation"),
    ],
)
def test_finished_answers_are_finished(transcript: str, reason: str) -> None:
    verdict = end_of_turn_verdict(transcript)
    assert verdict.ending is Ending.FINISHED
    assert verdict.reason == reason
    assert verdict.probability >= UNLIKELY_THRESHOLD


def test_only_the_end_of_the_transcript_counts() -> None:
    resumed = "So the main thing I did was, um... rewrite the billing service so it could retry."
    assert end_of_turn_verdict(resumed).ending is Ending.FINISHED
    assert end_of_turn_verdict("Yes. And").ending is Ending.UNFINISHED


def test_english_word_lists_do_not_apply_to_other_languages() -> None:
    # Only punctuation counts outside English: the open fragment is caught, but not by a word list.
    assert end_of_turn_verdict("Trabajé en el equipo de datos y", language="es").reason == "no closing punctuation"
    assert end_of_turn_verdict("I worked on the data team and", language="en").reason == "continuation word"
    assert end_of_turn_verdict("Trabajé en el equipo de datos.", language="es").ending is Ending.FINISHED
    assert end_of_turn_verdict("¿Puede repetir la pregunta?", language="es").reason == "question or exclamation"
    assert end_of_turn_verdict("Ich habe das Team geleitet,", language="de-DE").reason == "open punctuation"
    assert end_of_turn_verdict("So it was um", language="en-US").reason == "filler"


def test_empty_transcript_does_not_hold_the_turn() -> None:
    assert end_of_turn_probability("   ") >= UNLIKELY_THRESHOLD


def test_long_delay_outlasts_the_longest_thinking_pause_in_the_benchmark() -> None:
    assert DEFAULT_TIMINGS.max_delay_s > 2.0 + DEFAULT_TIMINGS.vad_min_silence_s
    assert DEFAULT_TIMINGS.min_delay_s < DEFAULT_TIMINGS.max_delay_s


def test_last_user_text_reads_the_latest_user_message() -> None:
    chat_ctx = ChatContext.empty()
    chat_ctx.add_message(role="system", content="You are an interviewer.")
    chat_ctx.add_message(role="user", content="First answer.")
    chat_ctx.add_message(role="assistant", content="Tell me more.")
    chat_ctx.add_message(role="user", content="So the main thing was, um")
    assert last_user_text(chat_ctx.items) == "So the main thing was, um"
    assert last_user_text(ChatContext.empty().items) == ""


def test_detector_implements_the_livekit_protocol() -> None:
    detector = TranscriptTurnDetector(language="en")
    chat_ctx = ChatContext.empty()
    chat_ctx.add_message(role="assistant", content="Tell me about a project you led.")
    chat_ctx.add_message(role="user", content="The project I'm proudest of was, uh")

    async def ask() -> tuple[float, float, bool]:
        probability = await detector.predict_end_of_turn(chat_ctx, timeout=1.0)
        return probability, await detector.unlikely_threshold("en"), await detector.supports_language("fr")

    probability, threshold, supports_french = asyncio.run(ask())
    assert probability < threshold == UNLIKELY_THRESHOLD
    assert supports_french is True
    assert detector.model and detector.provider == "mockflow"


def test_session_turn_handling_carries_the_detector_and_the_delays() -> None:
    handling = session_turn_handling("de")
    detector = handling["turn_detection"]
    assert isinstance(detector, turn_taking.TranscriptTurnDetector)
    assert detector.language == "de"
    assert handling["endpointing"] == {
        "mode": "fixed",
        "min_delay": DEFAULT_TIMINGS.min_delay_s,
        "max_delay": DEFAULT_TIMINGS.max_delay_s,
    }


def test_the_interviewer_session_ends_turns_with_the_transcript_detector_in_its_language() -> None:
    providers = agent_worker.ProviderSettings(openai_api_key="sk-test", deepgram_api_key="dg-test")

    async def build() -> agent_worker.AgentSession:  # the session wants a running event loop
        return agent_worker.build_session(providers, "de", agent_worker.load_vad())

    session = asyncio.run(build())

    assert isinstance(session.turn_detection, turn_taking.TranscriptTurnDetector)
    assert session.turn_detection.language == "de"
