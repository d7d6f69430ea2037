"""An external ASR model for the intelligibility of generated speech (``uniaudio eval tts --asr-model DIR``).

``DIR`` is a local Hugging Face folder that ``transformers.pipeline("automatic-speech-recognition")``
loads: a CTC model (wav2vec 2.0, HuBERT, … with its processor) or a Whisper checkpoint. Nothing is
downloaded (the hubs are offline); a folder that is not such a model is refused naming it. Audio
arrives at the codec's 24 kHz and is resampled (soxr, high quality) to the model's feature-extractor
rate before transcription.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

__all__ = ["ExternalAsr", "ExternalAsrError", "SCORED_ROLES"]

#: Text roles whose words the generated audio should say (a caption describes audio; it is not said).
SCORED_ROLES = ("transcription", "lyric")


class ExternalAsrError(ValueError):
    """The ``--asr-model`` folder cannot be loaded as an ASR model."""


class ExternalAsr:
    """A loaded ASR pipeline: :meth:`transcribe` turns a waveform into text."""

    def __init__(self, pipeline, sampling_rate: int) -> None:
        self._pipeline = pipeline
        self.sampling_rate = sampling_rate

    @classmethod
    def load(cls, model_dir: str, device: str = "cpu") -> ExternalAsr:
        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise ExternalAsrError(f"--asr-model {model_dir}: no config.json (expected a local Hugging Face ASR "
                                   "model folder, e.g. a wav2vec 2.0 CTC model with its processor, or Whisper)")
        from transformers import pipeline

        try:
            asr = pipeline("automatic-speech-recognition", model=str(path), device=device)
        except (OSError, ValueError, KeyError) as exc:
            raise ExternalAsrError(f"--asr-model {model_dir}: not loadable as an ASR pipeline: {exc}") from exc
        rate = getattr(asr.feature_extractor, "sampling_rate", None)
        if not rate:
            raise ExternalAsrError(f"--asr-model {model_dir}: its feature extractor names no sampling rate")
        return cls(asr, int(rate))

    def transcribe(self, wave: np.ndarray, rate: int) -> str:
        """Text of mono float ``wave`` sampled at ``rate`` Hz."""
        audio = np.asarray(wave, dtype=np.float32)
        if rate != self.sampling_rate:
            audio = soxr.resample(audio, rate, self.sampling_rate, quality="HQ").astype(np.float32)
        out = self._pipeline({"raw": audio, "sampling_rate": self.sampling_rate})
        return str(out["text"]).strip()
