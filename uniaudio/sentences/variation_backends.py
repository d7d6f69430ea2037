"""Renderers of the ``variation`` strategy: one text, acoustically varied (pitch, speed, volume, voice).

The interface is :class:`VariationBackend`: ``render(text, variation, audio=None)`` returns a
:class:`Rendition` — a 24 kHz mono float32 waveform and the attributes **actually applied** (after the
backend's own limits: clamped ranges, integer parameters, peak limiting), which the strategy records in the
audio segment's ``attrs``. A backend declares whether it needs a recording of the text (``needs_audio``,
the ``dsp`` backend transforms one) or renders from text alone (a TTS), which voices it offers for a language
(:meth:`~VariationBackend.voices`, empty for a backend without voices), and the Ray resources one unit needs
(:meth:`~VariationBackend.ray_remote_args`), so a neural TTS on GPU workers fits the same slot: subclass,
return ``{"num_gpus": 1}`` and add it to :data:`BACKENDS`.

Backends here:

* ``dsp`` (:class:`DspBackend`): a real recording, changed with signal processing. Pitch by ``s`` semitones
  (factor ``p = 2^(s/12)``) and speed ``v`` are done together: a phase-vocoder time stretch to ``p / v``
  times the duration (:func:`time_stretch`, numpy FFTs), then resampling by ``1 / p`` (:func:`resample`,
  soxr), which raises the pitch by ``p`` and leaves the duration ``1 / v`` times the original; then the
  gain, reduced where needed so the peak stays at or below :data:`PEAK_LIMIT`.
* ``espeak`` (:class:`EspeakBackend`): the ``espeak-ng`` program (Debian package ``espeak-ng``) run with
  ``-v voice -p pitch -s words-per-minute -a amplitude``; its 22.05 kHz output is resampled to 24 kHz.
  espeak's pitch scale 0–99 (50 = the voice's own) spans about 16 semitones, ≈ :data:`ESPEAK_STEPS_PER_SEMITONE`
  steps per semitone around 50 (measured on its English voices); speed 1 = 175 words per minute;
  amplitude 100 = 0 dB.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

__all__ = ["BACKENDS", "ESPEAK_PACKAGE", "PEAK_LIMIT", "SAMPLE_RATE", "DspBackend", "EspeakBackend", "Rendition",
           "Variation", "VariationBackend", "get_backend", "resample", "time_stretch"]

SAMPLE_RATE = 24_000
PEAK_LIMIT = 0.99
ESPEAK_PACKAGE = "espeak-ng"
ESPEAK_STEPS_PER_SEMITONE = 6.0
ESPEAK_DEFAULT_WPM = 175
#: espeak-ng voice variants drawn from (those installed; see ``espeak-ng --voices=variant``).
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


@dataclass(frozen=True)
class Variation:
    """What one rendition is asked to be: pitch shift in semitones, speed factor (2 = twice as fast,
    half the duration), gain in dB, and a voice (backends with voices; ``None`` = the backend's default)."""

    pitch_semitones: float = 0.0
    speed: float = 1.0
    gain_db: float = 0.0
    voice: str | None = None

    def __post_init__(self) -> None:
        if not -24.0 <= self.pitch_semitones <= 24.0:
            raise ValueError(f"pitch shift must be within ±24 semitones, got {self.pitch_semitones}")
        if not 0.25 <= self.speed <= 4.0:
            raise ValueError(f"speed factor must be within [0.25, 4], got {self.speed}")
        if not -60.0 <= self.gain_db <= 24.0:
            raise ValueError(f"gain must be within [-60, 24] dB, got {self.gain_db}")


@dataclass(frozen=True)
class Rendition:
    """A rendered waveform (float32, mono, :data:`SAMPLE_RATE`, peak ≤ 1) and the attributes applied
    (JSON-able: ``backend``, ``voice``, ``pitch_semitones``, ``speed``, ``gain_db``, ``duration_s`` and
    backend-specific parameters)."""

    wave: np.ndarray
    attrs: dict[str, Any]


class VariationBackend(ABC):
    """A renderer of acoustic variants of a text (see the module docstring)."""

    name: ClassVar[str]
    needs_audio: ClassVar[bool] = False  # renders a recording of the text (else the text alone)
    has_voices: ClassVar[bool] = False  # draws a voice per rendition from voices(language)

    def check(self) -> None:
        """Raise ``FileNotFoundError`` (with the fix) when the backend cannot run on this machine."""
        return None

    def voices(self, language: str | None) -> tuple[str, ...]:
        """Voices for ``language`` (None = unknown); empty for a backend without voices."""
        return ()

    def ray_remote_args(self) -> dict[str, Any]:
        """Resources of one unit's Ray task (a neural TTS: ``{"num_gpus": 1}``)."""
        return {}

    @abstractmethod
    def render(self, text: str, variation: Variation, audio: np.ndarray | None = None) -> Rendition:
        """``text`` rendered as ``variation``; ``audio`` is a 24 kHz mono recording of ``text`` (required
        when ``needs_audio``)."""


def _finish(wave: np.ndarray, gain_db: float) -> tuple[np.ndarray, float]:
    """Apply ``gain_db``, lowered so the peak stays ≤ :data:`PEAK_LIMIT`; returns (wave, gain applied)."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 0:
        gain_db = min(gain_db, 20 * math.log10(PEAK_LIMIT / peak))
    out = (wave * 10 ** (gain_db / 20)).astype(np.float32)
    return out, gain_db


def time_stretch(wave: np.ndarray, rate: float, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """``wave`` played ``rate`` times as fast at the same pitch; length ``round(len / rate)``.

    Phase vocoder: Hann-windowed STFT, frames read at steps of ``rate`` with magnitudes interpolated and
    phases advanced by each bin's measured frequency, then weighted overlap-add (numpy FFTs).
    """
    wave = np.asarray(wave, dtype=np.float32)
    if abs(rate - 1.0) < 1e-6:
        return wave.copy()
    window = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(wave.astype(np.float64), (n_fft // 2, n_fft // 2 + n_fft), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window
    spec = np.fft.rfft(frames, axis=1)  # (T, F)
    spec = np.concatenate([spec, np.zeros((1, spec.shape[1]), spec.dtype)])
    steps = np.arange(0, spec.shape[0] - 1, rate)
    base = np.floor(steps).astype(np.int64)
    frac = (steps - base)[:, None]
    left, right = spec[base], spec[base + 1]
    advance = np.linspace(0, np.pi * hop, spec.shape[1])  # expected phase advance per hop, per bin
    delta = np.angle(right) - np.angle(left) - advance
    delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
    phase = np.angle(spec[0]) + np.concatenate([np.zeros((1, spec.shape[1])),
                                                np.cumsum(delta + advance, axis=0)[:-1]])
    magnitude = (1 - frac) * np.abs(left) + frac * np.abs(right)
    out_frames = np.fft.irfft(magnitude * np.exp(1j * phase), n=n_fft, axis=1) * window
    length = (len(out_frames) - 1) * hop + n_fft
    out, norm = np.zeros(length), np.zeros(length)
    for i, frame in enumerate(out_frames):
        out[i * hop:i * hop + n_fft] += frame
        norm[i * hop:i * hop + n_fft] += window ** 2
    out = out / np.maximum(norm, 1e-8)
    target = max(1, round(len(wave) / rate))
    out = out[n_fft // 2:n_fft // 2 + target]
    return np.pad(out, (0, target - len(out))).astype(np.float32)


def resample(wave: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """``wave`` resampled from ``in_rate`` to ``out_rate`` Hz (soxr, any ratio)."""
    import soxr

    if in_rate == out_rate:
        return wave.astype(np.float32)
    return np.asarray(soxr.resample(wave.astype(np.float32), in_rate, out_rate, quality="HQ"), dtype=np.float32)


class DspBackend(VariationBackend):
    """Pitch, speed and gain of a real recording by signal processing (no voices)."""

    name = "dsp"
    needs_audio = True

    def render(self, text: str, variation: Variation, audio: np.ndarray | None = None) -> Rendition:
        if audio is None or audio.ndim != 1 or audio.size == 0:
            raise ValueError("the dsp backend renders a recording of the text: pass a non-empty mono waveform")
        p = 2.0 ** (variation.pitch_semitones / 12.0)
        stretched = time_stretch(audio, variation.speed / p)
        shifted = resample(stretched, SAMPLE_RATE * p, SAMPLE_RATE)
        wave, gain = _finish(shifted, variation.gain_db)
        attrs = {"backend": self.name, "voice": None, "pitch_semitones": round(variation.pitch_semitones, 3),
                 "speed": round(variation.speed, 3), "gain_db": round(gain, 3),
                 "duration_s": round(len(wave) / SAMPLE_RATE, 4)}
        return Rendition(wave, attrs)


def _espeak_program() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise FileNotFoundError(
            "the espeak variation backend runs the espeak-ng program, which is not on PATH: install the Debian "
            f"package {ESPEAK_PACKAGE} (apt-get install {ESPEAK_PACKAGE}) or use --variation-backend dsp")
    return found


@lru_cache(maxsize=4)
def _espeak_listing(program: str, what: str) -> tuple[tuple[str, ...], ...]:
    """Rows of ``espeak-ng --voices[=what]`` (header dropped), split on whitespace."""
    flag = f"--voices={what}" if what else "--voices"
    out = subprocess.run([program, flag], capture_output=True, text=True, check=True, timeout=60).stdout
    return tuple(tuple(line.split()) for line in out.splitlines()[1:] if line.strip())


def _wav_pcm16(data: bytes, where: str) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of espeak-ng's ``--stdout`` WAV (whose size fields are not filled)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"{where}: espeak-ng wrote no WAV data")
    pos, rate, channels, bits = 12, None, None, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
        elif chunk == b"data":
            if rate is None or bits != 16:
                raise RuntimeError(f"{where}: espeak-ng WAV is not 16-bit PCM")
            pcm = data[pos + 8:]
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).mean(axis=1)
            return (samples / 32768.0).astype(np.float32), int(rate)
        pos += 8 + size + (size & 1)
    raise RuntimeError(f"{where}: espeak-ng WAV has no data chunk")


class EspeakBackend(VariationBackend):
    """Text to speech with the ``espeak-ng`` program: voice (language + variant), pitch, speed, amplitude."""

    name = "espeak"
    has_voices = True

    def check(self) -> None:
        _espeak_program()

    def voices(self, language: str | None) -> tuple[str, ...]:
        program = _espeak_program()
        lang = (language or "en").strip().lower().replace("_", "-")
        listed = [row[1].lower() for row in _espeak_listing(program, "") if len(row) > 1]
        known = set(listed) | {name.split("-")[0] for name in listed}  # "en" from "en-gb", "en-us"
        if lang not in known:
            return ()
        installed = {row[4].split("/")[-1].lower() for row in _espeak_listing(program, "variant") if len(row) > 4}
        return tuple(f"{lang}+{v}" for v in ESPEAK_VARIANTS if v in installed) or (lang,)

    def render(self, text: str, variation: Variation, audio: np.ndarray | None = None) -> Rendition:
        program = _espeak_program()
        if not text.strip():
            raise ValueError("espeak-ng cannot render an empty text")
        voice = variation.voice or "en"
        pitch = min(99, max(0, round(50 + ESPEAK_STEPS_PER_SEMITONE * variation.pitch_semitones)))
        wpm = min(450, max(80, round(ESPEAK_DEFAULT_WPM * variation.speed)))
        amplitude = min(200, max(1, round(100 * 10 ** (variation.gain_db / 20))))
        cmd = [program, "-v", voice, "-p", str(pitch), "-s", str(wpm), "-a", str(amplitude), "-b", "1",
               "--stdout", "--stdin"]
        done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
        where = f"espeak-ng -v {voice}"
        if done.returncode != 0:
            raise RuntimeError(f"{where} failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
        raw, rate = _wav_pcm16(done.stdout, where)
        if not raw.size:
            raise RuntimeError(f"{where} rendered no audio for {text[:60]!r}")
        wave, limit = _finish(resample(raw, rate, SAMPLE_RATE), 0.0)
        attrs = {"backend": self.name, "voice": voice,
                 "pitch_semitones": round((pitch - 50) / ESPEAK_STEPS_PER_SEMITONE, 3),
                 "speed": round(wpm / ESPEAK_DEFAULT_WPM, 3),
                 "gain_db": round(20 * math.log10(amplitude / 100) + limit, 3),
                 "duration_s": round(len(wave) / SAMPLE_RATE, 4),
                 "espeak": {"pitch": pitch, "speed_wpm": wpm, "amplitude": amplitude}}
        return Rendition(wave, attrs)


BACKENDS: dict[str, type[VariationBackend]] = {"dsp": DspBackend, "espeak": EspeakBackend}


def get_backend(name: str) -> VariationBackend:
    """A backend instance by name; ``ValueError`` listing the names there are."""
    if name not in BACKENDS:
        raise ValueError(f"unknown variation backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]()
