"""The demo's mini corpora, each in the layout its real corpus is distributed in.

Most come from the fixture generators (:mod:`uniaudio.testing.corpora`); two have no fixture corpus there
and are made here: songs with lyrics as a Hugging Face-style parquet folder (read by the ``hf`` source with
``lyrics_column``), and a small JSONL text corpus for text-only sentences.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.testing.audio import encode_audio, synth
from uniaudio.testing.corpora import build_corpus

__all__ = ["FIXTURE_CORPORA", "build_demo_corpora"]

#: source name -> what it contributes to the demo
FIXTURE_CORPORA = {
    "librispeech": "speech with transcripts and speakers",
    "librilight": "long-form recordings",
    "audiocaps": "sound with captions",
    "musiccaps": "music with captions",
    "capspeech": "speech with captions and transcripts",
}

_LYRICS = [
    "la la the night is long and the road goes home",
    "sing to me of rivers and the rain",
    "hold on hold on the morning comes",
    "dancing in the kitchen light",
    "oh the stars are falling down tonight",
    "we were young and the summer never ends",
]


def _songs(root: Path) -> Path:
    """Songs with lyrics: ``songs/data/train-00000-of-00001.parquet`` (audio struct, lyrics, id)."""
    out = root / "songs" / "data"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, lyrics in enumerate(_LYRICS):
        audio = synth(4.0 + i % 3, 24_000, seed=100 + i, f0=180.0 + 30 * i)
        rows.append({"id": f"song{i:03d}", "lyrics": lyrics,
                     "audio": {"bytes": encode_audio(audio, 24_000, "flac"), "path": f"song{i:03d}.flac"}})
    pq.write_table(pa.Table.from_pylist(rows), out / "train-00000-of-00001.parquet")
    return out.parent


def _text(root: Path) -> Path:
    path = root / "text" / "corpus.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    docs = [{"id": f"doc{i}", "text": f"Document {i}. " + " ".join(_LYRICS[j % len(_LYRICS)].capitalize() + "."
                                                            for j in range(i, i + 8 + 6 * i))}
            for i in range(6)]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def build_demo_corpora(root: Path) -> dict[str, Path]:
    """Write every demo corpus under ``root``; returns name -> input path (corpus root or file)."""
    paths = {name: build_corpus(name, root / name) for name in FIXTURE_CORPORA}
    paths["songs"] = _songs(root)
    paths["text"] = _text(root)
    return paths
