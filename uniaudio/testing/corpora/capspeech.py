"""A tiny CapSpeech (spec: dataset-formats.md §12); ``build(root)`` returns ``root/CapSpeech`` (the INPUT_URI).

The source map ``source_roots.json`` sits in the returned directory, where the source finds it by default
(or pass ``roots_file=<returned>/source_roots.json`` / the same map as ``source_roots``).

* ``data/train_PT-00000-of-00001.parquet``: 4 rows with the base columns (``audio_path``, ``text``,
  ``source``, ``speech_duration`` float32, ``caption``) plus PT columns (``gender``, ``pitch``, ``age``,
  ``all_tags`` list):

  - ``mls``: ``mls_english/test/audio/10226/10111/10226_10111_000001.flac`` (16 kHz mono 2 s);
  - ``emilia``: ``EN_B00020_S00165_W000096.mp3`` (24 kHz mono 1.5 s) whose text is CapTTS-SE tagged
    (``<B_start>``, ``<train_whistling>``, ``<B_end>``);
  - ``libritts-r``: ``LibriTTS_R/test-clean/1089/134686/1089_134686_000001_000001_01.wav``, absent from the
    root (→ ``missing_file``);
  - ``voxceleb``: not in the map (→ ``unmapped_source``).

* ``source_roots.json``: ``{"mls": "corpora/mls", "emilia": "corpora/emilia", "libritts-r":
  "corpora/libritts-r"}`` (relative to the file) and the audio under ``corpora/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.testing.audio import write_audio

__all__ = ["build"]

ROWS = [
    {
        "audio_path": "mls_english/test/audio/10226/10111/10226_10111_000001.flac",
        "text": "and so the evening passed in quiet conversation",
        "source": "mls",
        "speech_duration": 2.0,
        "caption": "A middle-aged man speaks slowly with a low, calm voice.",
        "gender": "male",
        "pitch": "low-pitch",
        "age": "middle-aged adult",
        "all_tags": ["calm", "slow"],
    },
    {
        "audio_path": "EN_B00020_S00165_W000096.mp3",
        "text": " <B_start> Well, I never expected that. <train_whistling> <B_end> ",
        "source": "emilia",
        "speech_duration": 1.5,
        "caption": "A woman sounds surprised while a train whistles in the background.",
        "gender": "female",
        "pitch": "high-pitch",
        "age": "young adult",
        "all_tags": ["surprised"],
    },
    {
        "audio_path": "LibriTTS_R/test-clean/1089/134686/1089_134686_000001_000001_01.wav",
        "text": "He hoped there would be stew for dinner.",
        "source": "libritts-r",
        "speech_duration": 2.5,
        "caption": "A man reads in a neutral tone.",
        "gender": "male",
        "pitch": "medium-pitch",
        "age": "adult",
        "all_tags": [],
    },
    {
        "audio_path": "id10270/5r0dWxy17C8/00001.wav",
        "text": "that was really the turning point",
        "source": "voxceleb",
        "speech_duration": 3.0,
        "caption": "A man speaks enthusiastically in a reverberant hall.",
        "gender": "male",
        "pitch": "medium-pitch",
        "age": "adult",
        "all_tags": ["enthusiastic"],
    },
]

ROOTS = {"mls": "corpora/mls", "emilia": "corpora/emilia", "libritts-r": "corpora/libritts-r"}


def build(root: Path) -> Path:
    """Write the CapSpeech fixture under ``root``; returns the corpus root (holding ``source_roots.json``)."""
    corpus = Path(root) / "CapSpeech"
    out = corpus / "data/train_PT-00000-of-00001.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    types = {"speech_duration": pa.float32(), "all_tags": pa.list_(pa.string())}
    table = pa.table({k: pa.array([r[k] for r in ROWS], type=types.get(k, pa.string())) for k in ROWS[0]})
    pq.write_table(table, out)
    (corpus / "source_roots.json").write_text(json.dumps(ROOTS, indent=1))
    write_audio(corpus / "corpora/mls" / ROWS[0]["audio_path"], 2.0, 16000, seed=61)
    write_audio(corpus / "corpora/emilia" / ROWS[1]["audio_path"], 1.5, 24000, seed=62)
    (corpus / "corpora/libritts-r").mkdir(parents=True, exist_ok=True)
    return corpus
