"""The scripted interview the simulator plays: the candidate's answers and the interviewer's lines.

Each answer is one or more spoken parts; between parts the candidate stops to think for the given
pause, always right after an unfinished clause (a filler, a conjunction, an article, a bare verb).
The part texts are also what the fake Deepgram returns for each speech segment, written the way
Deepgram punctuates with `filler_words=true`. The fake LLM answers from the same script: the
interviewer line of the answer it is replying to, after a `transition_stage` tool call where the
script moves the interview to its next stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

THINKING_PAUSES_S = (0.8, 1.2, 1.6, 2.0)
CANDIDATE_NAME = "Sam"


@dataclass(frozen=True)
class Answer:
    """One candidate turn: spoken parts separated by thinking pauses, and the interviewer's reply."""

    parts: tuple[str, ...]
    reply: str
    pauses_s: tuple[float, ...] = field(default=())
    tool: str | None = None

    def __post_init__(self) -> None:
        if len(self.pauses_s) != len(self.parts) - 1:
            raise ValueError("an answer needs one pause between each pair of parts")

    @property
    def kind(self) -> str:
        """'pause' (has thinking pauses), 'tool' (the reply needs a tool call first) or 'finished'."""
        if self.pauses_s:
            return "pause"
        return "tool" if self.tool else "finished"

    @property
    def text(self) -> str:
        return " ".join(self.parts)


GREETING = "Hi Sam, I'm Alex. This is a short practice interview. Are you ready to begin?"
GOODBYE = "Thank you, Sam. That's all for today. Goodbye!"

FULL_INTERVIEW: tuple[Answer, ...] = (
    Answer(("Yes, I'm ready. Thanks for having me.",), "Great. Could you introduce yourself?"),
    Answer(("I'm a backend engineer with six years of experience.",),
           "Nice. What do you do in your current role?", tool="transition_stage"),
    Answer(("So the main thing I do right now is, um...", "own the billing service for the whole company."),
           "What did you do before that?", pauses_s=(0.8,)),
    Answer(("Before that I spent two years at a startup building routing tools.",),
           "Tell me about a project you are proud of.", tool="transition_stage"),
    Answer(("The project I'm proudest of was, uh,", "rewriting our payment retries so failed charges dropped by half."),
           "How did you measure that?", pauses_s=(1.2,)),
    Answer(("We looked at three months of failed charges.",), "Why did it work?"),
    Answer(("I think the reason it worked was because", "we made every retry idempotent from the start."),
           "What was the hardest part?", pauses_s=(1.6,)),
    Answer(("The hardest part of that project was", "getting the team to pause feature work for a month."),
           "And what did you learn?", pauses_s=(2.0,)),
    Answer(("What I learned is that the", "team needs to see the data before a big change."),
           "What kind of work do you want next?", pauses_s=(1.2,)),
    Answer(("I want to work on reliability problems at a larger scale.",), "Why this company?"),
    Answer(("So, um...", "your platform team is solving exactly the problems I like and", "I'd learn a lot there."),
           "Do you have any questions for me?", pauses_s=(0.8, 2.0)),
    Answer(("No questions from me. Thank you for your time!",), GOODBYE),
)

SHORT_INTERVIEW: tuple[Answer, ...] = (
    Answer(("I'm ready.",), "Great. Could you introduce yourself?"),
)

# A few minutes of every kind of turn, for many interviews at once (capacity, memory).
CAPACITY_INTERVIEW: tuple[Answer, ...] = (FULL_INTERVIEW[0], FULL_INTERVIEW[2], FULL_INTERVIEW[3], FULL_INTERVIEW[5])

SCRIPTS = {"full": FULL_INTERVIEW, "short": SHORT_INTERVIEW, "capacity": CAPACITY_INTERVIEW}

_WORDS = re.compile(r"[a-z']+")


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def answer_for(user_text: str, script: tuple[Answer, ...]) -> Answer | None:
    """The scripted answer a user message belongs to (best word overlap), tolerant of split turns."""
    heard = _words(user_text)
    if not heard:
        return None
    scored = [(len(heard & _words(answer.text)) / len(heard), index) for index, answer in enumerate(script)]
    best_score, best_index = max(scored)
    return script[best_index] if best_score >= 0.5 else None
