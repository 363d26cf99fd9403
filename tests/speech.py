"""Synthetic speech for the voice tests: espeak-ng speaks, sox resamples (both installed by
scripts/install-system-packages.sh).

Samples are int16 mono numpy arrays at `SAMPLE_RATE`, trimmed of espeak's leading and trailing
silence so that a test knows exactly where speech starts and ends.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 24_000
WORDS_PER_MINUTE = 165
VOICED_RMS = 300.0  # the fake Deepgram's default speech threshold
ANALYSIS_WINDOW_S = 0.01


def synthesize(text: str, *, sample_rate: int = SAMPLE_RATE, voice: str = "en-us") -> np.ndarray:
    """`text` spoken by espeak-ng, resampled to `sample_rate`, without leading or trailing silence."""
    with tempfile.TemporaryDirectory() as tmp:
        spoken, resampled = Path(tmp) / "spoken.wav", Path(tmp) / "resampled.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(spoken), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(spoken), "-r", str(sample_rate), "-c", "1", "-b", "16", str(resampled)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(resampled), "rb") as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()
    spans = voiced_spans(samples, sample_rate, min_gap_s=0.0)
    if not spans:
        raise RuntimeError(f"espeak-ng produced no audible speech for {text!r}")
    return samples[int(spans[0][0] * sample_rate) : int(spans[-1][1] * sample_rate)]


def silence(seconds: float, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.int16)


def concatenate(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.int16)


def duration_s(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> float:
    return len(samples) / sample_rate


def voiced_spans(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, *, min_gap_s: float = 0.25
) -> list[tuple[float, float]]:
    """(start_s, end_s) of each stretch of speech, split where quiet lasts at least `min_gap_s`:
    with the fake Deepgram's `end_silence_s` this is how it will cut the audio into segments."""
    window = int(sample_rate * ANALYSIS_WINDOW_S)
    count = len(samples) // window
    frames = samples[: count * window].astype(np.float64).reshape(count, window)
    voiced = np.sqrt((frames**2).mean(axis=1)) >= VOICED_RMS
    spans: list[tuple[float, float]] = []
    for index in np.flatnonzero(voiced):
        start, end = float(index * ANALYSIS_WINDOW_S), float((index + 1) * ANALYSIS_WINDOW_S)
        if spans and start - spans[-1][1] < max(min_gap_s, ANALYSIS_WINDOW_S / 2):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans
