"""Tests for postprocess: merging, rendering and speech analytics on hand-built turns."""

from __future__ import annotations

import html
import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from markdown_it import MarkdownIt

from postprocess import (
    LONG_PAUSE_THRESHOLD_S,
    Turn,
    compute_analytics,
    escape_markdown,
    format_timestamp,
    merge_turns,
    to_markdown,
    to_plain_text,
    to_turn,
)

STAGE_TITLES = {
    "greeting": "Greeting",
    "self_intro": "Self-introduction",
    "past_experience": "Past experience",
}


def timed_words(tokens: list[str], start: float, word_s: float, gap_s: float = 0.0) -> list[dict[str, Any]]:
    """Words of equal length `word_s`, separated by `gap_s`, the first starting at `start`."""
    words = []
    for index, token in enumerate(tokens):
        word_start = start + index * (word_s + gap_s)
        words.append({"word": token.lower().strip(",.?!"), "start": word_start, "end": word_start + word_s,
                      "confidence": 0.9, "punctuated_word": token})
    return words


def make_turn(seq: int, speaker: str, stage: str, text: str, start_s: float, end_s: float,
              words: list[dict[str, Any]] | None = None, interrupted: bool = False) -> dict[str, Any]:
    return {"seq": seq, "speaker": speaker, "stage": stage, "text": text, "start_s": start_s, "end_s": end_s,
            "words": words or [], "interrupted": interrupted}


def candidate_turn_with_words(seq: int, stage: str, words: list[dict[str, Any]],
                              start_s: float | None = None, end_s: float | None = None) -> dict[str, Any]:
    return make_turn(seq, "candidate", stage, " ".join(w["punctuated_word"] for w in words),
                     words[0]["start"] if start_s is None else start_s,
                     words[-1]["end"] if end_s is None else end_s, words)


def rendered_html(markdown: str) -> str:
    """HTML from a GFM-like renderer (tables, strikethrough, bare-URL autolinks, raw HTML allowed)."""
    return MarkdownIt("gfm-like").render(markdown)


# ----------------------------------------------------------------------------------------- merging


def test_merge_joins_consecutive_fragments_of_one_speaker_in_one_stage():
    first_words = timed_words(["I", "worked"], start=10.0, word_s=0.5)
    second_words = timed_words(["at", "Acme."], start=12.0, word_s=0.5)
    fragments = [
        make_turn(1, "interviewer", "self_intro", "Tell me about yourself.", 0.0, 4.0),
        make_turn(2, "candidate", "self_intro", "  I   worked ", 10.0, 11.0, first_words),
        make_turn(3, "candidate", "self_intro", "at Acme.", 12.0, 13.0, second_words),
    ]

    merged = merge_turns(fragments)

    assert [turn.speaker for turn in merged] == ["interviewer", "candidate"]
    answer = merged[1]
    assert answer.text == "I worked at Acme."
    assert (answer.seq, answer.start_s, answer.end_s) == (2, 10.0, 13.0)
    assert [word.word for word in answer.words] == ["i", "worked", "at", "acme"]
    assert [word.start for word in answer.words] == [10.0, 10.5, 12.0, 12.5]


def test_merge_drops_words_when_only_some_fragments_have_them():
    fragments = [
        make_turn(1, "candidate", "self_intro", "I worked", 10.0, 11.0,
                  timed_words(["I", "worked"], 10.0, 0.5)),
        make_turn(2, "candidate", "self_intro", "at Acme for years", 12.0, 14.0),
    ]

    (answer,) = merge_turns(fragments)

    assert answer.text == "I worked at Acme for years"
    assert answer.words == ()
    assert compute_analytics(fragments)["answers"][0]["timing"] == "turn"


def test_merge_keeps_turns_apart_across_speakers_and_stages():
    fragments = [
        make_turn(1, "candidate", "greeting", "Hi.", 0.0, 1.0),
        make_turn(2, "candidate", "self_intro", "I'm Ana.", 1.0, 2.0),
        make_turn(3, "interviewer", "self_intro", "Welcome.", 2.0, 3.0),
        make_turn(4, "candidate", "self_intro", "Thanks.", 3.0, 4.0),
    ]

    merged = merge_turns(fragments)

    assert [(turn.speaker, turn.stage, turn.text) for turn in merged] == [
        ("candidate", "greeting", "Hi."),
        ("candidate", "self_intro", "I'm Ana."),
        ("interviewer", "self_intro", "Welcome."),
        ("candidate", "self_intro", "Thanks."),
    ]


def test_merge_drops_empty_fragments_so_they_do_not_split_an_answer():
    fragments = [
        make_turn(1, "candidate", "self_intro", "First part", 0.0, 1.0),
        make_turn(2, "interviewer", "self_intro", "   ", 1.0, 1.5),
        make_turn(3, "candidate", "self_intro", "second part", 1.5, 2.5),
        make_turn(4, "candidate", "self_intro", "", 2.5, 3.0),
    ]

    merged = merge_turns(fragments)

    assert len(merged) == 1
    assert merged[0].text == "First part second part"
    assert merged[0].end_s == 2.5


def test_merge_orders_fragments_by_seq():
    fragments = [
        make_turn(3, "candidate", "self_intro", "three", 3.0, 4.0),
        make_turn(1, "interviewer", "self_intro", "one", 0.0, 1.0),
        make_turn(2, "candidate", "self_intro", "two", 2.0, 3.0),
    ]

    merged = merge_turns(fragments)

    assert [(turn.seq, turn.text) for turn in merged] == [(1, "one"), (2, "two three")]


def test_merged_turn_is_interrupted_when_any_fragment_was():
    fragments = [
        make_turn(1, "interviewer", "greeting", "Hello and", 0.0, 1.0, interrupted=True),
        make_turn(2, "interviewer", "greeting", "welcome.", 1.0, 2.0),
    ]

    assert merge_turns(fragments)[0].interrupted is True


def test_merge_is_idempotent_and_accepts_turns_dicts_and_row_objects():
    fragments = [
        make_turn(1, "interviewer", "greeting", "Hello.", 0.0, 1.0),
        make_turn(2, "candidate", "greeting", "Hi", 1.5, 2.0, timed_words(["Hi"], 1.5, 0.5)),
        make_turn(3, "candidate", "greeting", "there.", 2.0, 2.5, timed_words(["there."], 2.0, 0.5)),
    ]
    merged = merge_turns(fragments)

    assert merge_turns(merged) == merged
    assert merge_turns([turn.to_dict() for turn in merged]) == merged
    assert merge_turns([SimpleNamespace(**fragment) for fragment in fragments]) == merged
    assert to_turn(merged[1].to_dict()) == merged[1]


def test_words_without_timing_are_ignored():
    turn = to_turn(make_turn(1, "candidate", "greeting", "hi there", 0.0, 1.0, [
        {"word": "hi", "start": 0.0, "end": 0.4},
        {"word": "there", "start": None, "end": 0.9},
    ]))

    assert [word.word for word in turn.words] == ["hi"]


# --------------------------------------------------------------------------------------- rendering


def sample_transcript() -> list[dict[str, Any]]:
    return [
        make_turn(1, "interviewer", "greeting", "Hello, welcome.", 0.0, 3.2),
        make_turn(2, "candidate", "greeting", "Thanks!", 4.0, 5.0),
        make_turn(3, "interviewer", "self_intro", "Tell me about", 65.5, 67.0),
        make_turn(4, "interviewer", "self_intro", "yourself.", 67.0, 68.0),
        make_turn(5, "candidate", "self_intro", "I build APIs.", 70.9, 75.0),
        make_turn(6, "interviewer", "team_fit", "How do you", 3725.0, 3727.0, interrupted=True),
    ]


def test_plain_text_has_title_meta_stage_headings_labels_and_timestamps():
    meta = {"title": "Mock interview", "Role": "Backend engineer", "Company": None}

    text = to_plain_text(sample_transcript(), STAGE_TITLES, meta)

    assert text == (
        "Mock interview\n"
        "==============\n"
        "Role: Backend engineer\n"
        "\n"
        "Greeting\n"
        "--------\n"
        "[00:00] Interviewer: Hello, welcome.\n"
        "[00:04] Candidate: Thanks!\n"
        "\n"
        "Self-introduction\n"
        "-----------------\n"
        "[01:05] Interviewer: Tell me about yourself.\n"
        "[01:10] Candidate: I build APIs.\n"
        "\n"
        "Team fit\n"
        "--------\n"
        "[62:05] Interviewer: How do you (interrupted)\n"
    )


def test_markdown_has_title_meta_stage_headings_labels_and_timestamps():
    meta = {"title": "Mock interview", "Role": "Backend engineer"}

    markdown = to_markdown(sample_transcript(), STAGE_TITLES, meta)

    assert markdown == (
        "# Mock interview\n"
        "\n"
        "- **Role:** Backend engineer\n"
        "\n"
        "## Greeting\n"
        "\n"
        "**\\[00\\:00\\] Interviewer:** Hello, welcome.\n"
        "\n"
        "**\\[00\\:04\\] Candidate:** Thanks!\n"
        "\n"
        "## Self-introduction\n"
        "\n"
        "**\\[01\\:05\\] Interviewer:** Tell me about yourself.\n"
        "\n"
        "**\\[01\\:10\\] Candidate:** I build APIs.\n"
        "\n"
        "## Team fit\n"
        "\n"
        "**\\[62\\:05\\] Interviewer:** How do you *(interrupted)*\n"
    )
    rendered = rendered_html(markdown)
    assert "<h2>Self-introduction</h2>" in rendered
    assert "<strong>[01:10] Candidate:</strong> I build APIs." in rendered


def test_stage_heading_repeats_when_the_interview_returns_to_a_stage():
    turns = [
        make_turn(1, "interviewer", "greeting", "Hi.", 0.0, 1.0),
        make_turn(2, "interviewer", "self_intro", "Next.", 2.0, 3.0),
        make_turn(3, "interviewer", "greeting", "Back.", 4.0, 5.0),
    ]

    headings = [line for line in to_markdown(turns, STAGE_TITLES).splitlines() if line.startswith("## ")]

    assert headings == ["## Greeting", "## Self-introduction", "## Greeting"]


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, "[00:00]"), (59.99, "[00:59]"), (75.9, "[01:15]"),
                                                    (3725.0, "[62:05]"), (-1.0, "[00:00]")])
def test_timestamps_are_minutes_and_seconds_since_start(seconds: float, expected: str):
    assert format_timestamp(seconds) == expected


INJECTIONS = [
    "[click here](https://evil.example/steal) please",
    "![tracker](https://evil.example/pixel.png)",
    "<script>alert(1)</script> and <img src=x onerror=alert(1)>",
    "<https://evil.example> autolink",
    "visit https://evil.example/a_b or www.evil.example or mail bad@evil.example",
    "**bold** _italic_ `code` ~~gone~~ a|b|c",
    "trailing hashes ##",
    "&lt;b&gt;entity&lt;/b&gt; and &#60;i&#62;",
    "back\\slash \\[ and [ref]: https://evil.example",
]


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_markdown_escapes_user_text_so_it_renders_literally(hostile: str):
    turns = [make_turn(1, "candidate", "self_intro", hostile, 1.0, 2.0)]

    rendered = rendered_html(to_markdown(turns, STAGE_TITLES))

    answer_html = rendered.split("<strong>[00:01] Candidate:</strong> ", 1)[1].split("</p>", 1)[0]
    assert not re.search(r"<(?!/?strong>)", answer_html), answer_html
    assert html.unescape(answer_html) == hostile


def test_markdown_escapes_meta_and_stage_titles_too():
    turns = [make_turn(1, "candidate", "self_intro", "Hi", 1.0, 2.0)]
    meta = {"title": "<b>Mock</b> [x](https://evil.example)", "Candidate": "Ana\n# Hacked *bold*"}

    rendered = rendered_html(to_markdown(turns, {"self_intro": "Intro <i>x</i>"}, meta))

    for markup in ("<a ", "<b>", "<i>", "<em>"):
        assert markup not in rendered
    assert "<h1>&lt;b&gt;Mock&lt;/b&gt; [x](https://evil.example)</h1>" in rendered
    assert "<strong>Candidate:</strong> Ana # Hacked *bold*" in rendered
    assert "<h2>Intro &lt;i&gt;x&lt;/i&gt;</h2>" in rendered


def test_escape_markdown_keeps_sentence_punctuation_readable():
    assert escape_markdown("I led it. It shipped: on time.") == "I led it. It shipped: on time."
    assert escape_markdown("Node.js at 3:30") == "Node\\.js at 3\\:30"


def test_empty_transcript_renders_only_the_title():
    assert to_markdown([], STAGE_TITLES) == "# Interview transcript\n"
    assert to_plain_text([], STAGE_TITLES) == "Interview transcript\n====================\n"


# --------------------------------------------------------------------------------------- analytics


def single_answer(analytics: dict[str, Any]) -> dict[str, Any]:
    assert len(analytics["answers"]) == 1
    return analytics["answers"][0]


def test_pace_is_words_per_voiced_minute_excluding_long_pauses():
    # 20 words of 0.4 s back to back (8 s), a 3 s silence, then 10 more (4 s): 30 words, 12 s voiced.
    words = timed_words([f"w{i}" for i in range(20)], start=10.0, word_s=0.4)
    words += timed_words([f"v{i}" for i in range(10)], start=10.0 + 8.0 + 3.0, word_s=0.4)

    answer = single_answer(compute_analytics([candidate_turn_with_words(1, "self_intro", words)]))

    assert answer["timing"] == "words"
    assert answer["word_count"] == 30
    assert answer["voiced_s"] == pytest.approx(12.0)
    assert answer["pace_wpm"] == pytest.approx(30 / (12.0 / 60))  # 150 wpm
    assert answer["length_s"] == pytest.approx(15.0)


def test_short_gaps_between_words_count_as_voiced_time():
    # 10 words of 0.5 s with 0.5 s gaps: 5 s of words + 9 gaps of 0.5 s = 9.5 s voiced.
    words = timed_words([f"w{i}" for i in range(10)], start=0.0, word_s=0.5, gap_s=0.5)

    answer = single_answer(compute_analytics([candidate_turn_with_words(1, "self_intro", words)]))

    assert answer["voiced_s"] == pytest.approx(9.5)
    assert answer["pace_wpm"] == pytest.approx(round(10 / (9.5 / 60), 1))
    assert answer["long_pauses"]["count"] == 0


def test_long_pauses_are_counted_with_positions_from_the_threshold_up():
    assert LONG_PAUSE_THRESHOLD_S == 2.0
    words = [
        {"word": "so", "start": 1.0, "end": 1.5},
        {"word": "first", "start": 3.5, "end": 4.0},   # gap 2.0 s: exactly the threshold, counts
        {"word": "then", "start": 5.75, "end": 6.0},   # gap 1.75 s: below, voiced
        {"word": "finally", "start": 9.0, "end": 9.5},  # gap 3.0 s: the longest
    ]
    for word in words:
        word["punctuated_word"] = word["word"]

    answer = single_answer(compute_analytics([candidate_turn_with_words(1, "past_experience", words)]))

    pauses = answer["long_pauses"]
    assert pauses["count"] == 2
    assert pauses["longest_s"] == pytest.approx(3.0)
    assert pauses["positions"] == [
        {"after_word_index": 0, "after_word": "so", "start_s": 1.5, "end_s": 3.5, "duration_s": 2.0},
        {"after_word_index": 2, "after_word": "then", "start_s": 6.0, "end_s": 9.0, "duration_s": 3.0},
    ]
    # Span 8.5 s minus the 5 s of long pauses.
    assert answer["voiced_s"] == pytest.approx(3.5)


def test_overlapping_and_unordered_word_timings_make_no_pause_or_negative_time():
    words = [
        {"word": "b", "start": 1.0, "end": 4.0, "punctuated_word": "b"},
        {"word": "a", "start": 0.0, "end": 2.0, "punctuated_word": "a"},
        {"word": "c", "start": 3.0, "end": 3.5, "punctuated_word": "c"},  # inside b
    ]
    turn = make_turn(1, "candidate", "self_intro", "a b c", 0.0, 4.0, words)

    answer = single_answer(compute_analytics([turn]))

    assert answer["long_pauses"]["count"] == 0
    assert answer["voiced_s"] == pytest.approx(4.0)
    assert answer["length_s"] == pytest.approx(4.0)


def test_fillers_are_counted_by_family_case_and_punctuation_insensitively():
    tokens = ["Um,", "I", "UMM", "erm", "hmm.", "Uh.", "uhh", "I", "like", "Python,", "like,",
              "you", "know,", "you", "really", "know", "it"]
    words = timed_words(tokens, start=0.0, word_s=0.25)
    for word in words:
        word["word"] = word["punctuated_word"]  # as raw as the STT could report it

    fillers = single_answer(compute_analytics([candidate_turn_with_words(1, "self_intro", words)]))["fillers"]

    assert fillers["counts"] == {"um": 4, "uh": 2, "like": 2, "you know": 1}
    assert fillers["total"] == 9
    assert fillers["per_100_words"] == pytest.approx(round(9 * 100 / 17, 2))


def test_time_to_answer_is_first_word_minus_end_of_the_interviewer_turn():
    turns = [
        make_turn(1, "interviewer", "self_intro", "Tell me about yourself.", 0.0, 10.0),
        candidate_turn_with_words(2, "self_intro", timed_words(["Sure."], 11.5, word_s=0.5), start_s=11.0),
    ]

    answer = single_answer(compute_analytics(turns))

    assert answer["time_to_answer_s"] == pytest.approx(1.5)
    assert answer["barge_in"] is False


def test_barge_in_is_clamped_to_zero_and_flagged():
    turns = [
        make_turn(1, "interviewer", "self_intro", "Tell me about", 0.0, 10.0),
        candidate_turn_with_words(2, "self_intro", timed_words(["Sure."], start=9.2, word_s=0.5)),
    ]

    analytics = compute_analytics(turns)

    answer = single_answer(analytics)
    assert answer["time_to_answer_s"] == 0.0
    assert answer["barge_in"] is True
    assert analytics["overall"]["time_to_answer"]["barge_ins"] == 1


def test_an_answer_that_interrupted_the_interviewer_is_flagged_even_with_a_positive_gap():
    turns = [
        make_turn(1, "interviewer", "self_intro", "Tell me", 0.0, 10.0, interrupted=True),
        candidate_turn_with_words(2, "self_intro", timed_words(["Sure."], start=10.25, word_s=0.5)),
    ]

    answer = single_answer(compute_analytics(turns))

    assert answer["time_to_answer_s"] == pytest.approx(0.25)
    assert answer["barge_in"] is True


def test_time_to_answer_is_none_without_a_preceding_interviewer_turn():
    turns = [
        make_turn(1, "candidate", "greeting", "Hello?", 0.0, 1.0),
        make_turn(2, "candidate", "self_intro", "Shall I start?", 1.0, 2.0),
    ]

    answers = compute_analytics(turns)["answers"]

    assert [answer["time_to_answer_s"] for answer in answers] == [None, None]
    assert [answer["barge_in"] for answer in answers] == [False, False]


def test_talk_time_ratio_overall_and_per_stage():
    turns = [
        make_turn(1, "interviewer", "greeting", "Hello.", 0.0, 4.0),
        make_turn(2, "candidate", "greeting", "Hi.", 5.0, 7.0),
        make_turn(3, "interviewer", "self_intro", "Tell me about you.", 8.0, 14.0),
        make_turn(4, "candidate", "self_intro", "Long answer.", 15.0, 33.0),
    ]

    analytics = compute_analytics(turns)

    greeting, self_intro = analytics["stages"]
    assert greeting["stage"] == "greeting"
    assert greeting["talk_time"] == {"candidate_s": 2.0, "interviewer_s": 4.0,
                                     "candidate_to_interviewer": 0.5, "candidate_share": round(2 / 6, 2)}
    assert self_intro["talk_time"]["candidate_to_interviewer"] == pytest.approx(3.0)
    assert analytics["overall"]["talk_time"] == {"candidate_s": 20.0, "interviewer_s": 10.0,
                                                 "candidate_to_interviewer": 2.0,
                                                 "candidate_share": round(20 / 30, 2)}


def test_answer_lengths_and_stage_and_overall_aggregates():
    intro_words = timed_words([f"w{i}" for i in range(10)], start=2.0, word_s=0.5)          # 10 words, 5 s
    past_one = timed_words(["um"] + [f"p{i}" for i in range(19)], start=10.0, word_s=0.5)   # 20 words, 10 s
    past_two = timed_words([f"q{i}" for i in range(30)], start=30.0, word_s=0.25)           # 30 words, 7.5 s
    turns = [
        make_turn(1, "interviewer", "self_intro", "Introduce yourself.", 0.0, 1.0),
        candidate_turn_with_words(2, "self_intro", intro_words),
        make_turn(3, "interviewer", "past_experience", "A project?", 8.0, 9.0),
        candidate_turn_with_words(4, "past_experience", past_one),
        make_turn(5, "interviewer", "past_experience", "Another?", 21.0, 27.0),
        candidate_turn_with_words(6, "past_experience", past_two),
    ]

    analytics = compute_analytics(turns)

    assert [(a["seq"], a["length_s"], a["word_count"]) for a in analytics["answers"]] == [
        (2, 5.0, 10), (4, 10.0, 20), (6, 7.5, 30)]
    past = analytics["stages"][1]
    assert past["stage"] == "past_experience"
    assert past["answer_count"] == 2
    assert past["word_count"] == 50
    assert past["pace_wpm"] == pytest.approx(round(50 / (17.5 / 60), 1))  # total words over total voiced time
    assert past["fillers"]["counts"]["um"] == 1
    assert past["fillers"]["per_100_words"] == pytest.approx(2.0)
    assert past["answer_length"] == {"total_s": 17.5, "mean_s": 8.75, "longest_s": 10.0, "mean_words": 25.0}
    assert past["time_to_answer"] == {"count": 2, "mean_s": 2.0, "max_s": 3.0, "barge_ins": 0}
    overall = analytics["overall"]
    assert overall["answer_count"] == 3
    assert overall["word_count"] == 60
    assert overall["pace_wpm"] == pytest.approx(round(60 / (22.5 / 60), 1))
    assert overall["timing"] == "words"
    assert overall["long_pauses"] == {"count": 0, "longest_s": None}


def test_without_words_analytics_fall_back_to_turn_text_and_times():
    turns = [
        make_turn(1, "interviewer", "self_intro", "Tell me about yourself.", 0.0, 5.0),
        make_turn(2, "candidate", "self_intro", "Um, I like building, you know, reliable systems.",
                  6.0, 10.0),
    ]

    analytics = compute_analytics(turns)

    answer = single_answer(analytics)
    assert answer["timing"] == "turn"
    assert answer["word_count"] == 8
    assert answer["voiced_s"] == pytest.approx(4.0)
    assert answer["pace_wpm"] == pytest.approx(8 / (4.0 / 60))  # 120 wpm over the turn duration
    assert answer["length_s"] == pytest.approx(4.0)
    assert answer["fillers"]["counts"] == {"um": 1, "uh": 0, "like": 1, "you know": 1}
    assert answer["long_pauses"] == {"count": None, "longest_s": None, "positions": []}
    assert answer["time_to_answer_s"] == pytest.approx(1.0)
    assert analytics["overall"]["timing"] == "turn"
    assert analytics["overall"]["long_pauses"]["count"] is None


def test_aggregates_say_mixed_when_only_some_answers_have_word_timings():
    turns = [
        make_turn(1, "candidate", "self_intro", "no timings here", 0.0, 3.0),
        make_turn(2, "interviewer", "self_intro", "Go on.", 3.0, 4.0),
        candidate_turn_with_words(3, "self_intro", timed_words(["a", "b"], 5.0, 0.5, gap_s=2.5)),
    ]

    overall = compute_analytics(turns)["overall"]

    assert overall["timing"] == "mixed"
    assert overall["long_pauses"] == {"count": 1, "longest_s": 2.5}
    assert overall["word_count"] == 5
    assert overall["voiced_s"] == pytest.approx(3.0 + 1.0)


def test_empty_transcript_gives_empty_analytics():
    analytics = compute_analytics([])

    assert analytics["answers"] == []
    assert analytics["stages"] == []
    overall = analytics["overall"]
    assert overall["answer_count"] == 0
    assert overall["timing"] is None
    assert overall["pace_wpm"] is None
    assert overall["fillers"] == {"counts": {"um": 0, "uh": 0, "like": 0, "you know": 0}, "total": 0,
                                  "per_100_words": None}
    assert overall["talk_time"]["candidate_to_interviewer"] is None
    assert json.loads(json.dumps(analytics)) == analytics


def test_a_stage_with_only_interviewer_speech_has_talk_time_but_no_answers():
    turns = [make_turn(1, "interviewer", "greeting", "Hello.", 0.0, 2.0)]

    (greeting,) = compute_analytics(turns)["stages"]

    assert greeting["answer_count"] == 0
    assert greeting["pace_wpm"] is None
    assert greeting["talk_time"]["interviewer_s"] == 2.0
    assert greeting["talk_time"]["candidate_share"] == 0.0


def test_analytics_are_json_serialisable_and_merge_fragments_first():
    fragments = [
        make_turn(1, "interviewer", "self_intro", "Hi.", 0.0, 1.0),
        candidate_turn_with_words(2, "self_intro", timed_words(["one", "two"], 2.0, 0.5)),
        candidate_turn_with_words(3, "self_intro", timed_words(["three"], 3.0, 0.5)),
    ]

    analytics = compute_analytics(fragments)

    assert json.loads(json.dumps(analytics)) == analytics
    answer = single_answer(analytics)
    assert answer["word_count"] == 3
    assert answer["time_to_answer_s"] == pytest.approx(1.0)
    assert isinstance(merge_turns(fragments)[1], Turn)
