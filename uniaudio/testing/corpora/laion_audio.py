"""A tiny LAION-Audio-300M (spec: dataset-formats.md §11); ``build(root)`` returns ``root/LAION-Audio-300M``.

Pass the returned directory (or the tar itself) as INPUT_URI. It holds ``flash_20_voice_snippets_0.tar``:

* ``seg0001.metadata.json`` *before* ``seg0001.audio.mp3`` (48 kHz mono 2 s; ``duration_ms`` 2000,
  ``start_time_ms`` 15000, caption under ``caption``);
* ``seg0002.audio.mp3`` + ``seg0002.metadata.json`` (44.1 kHz stereo 1.5 s; the caption under the
  alternative key ``audio_caption``);
* an orphan ``seg0003.audio.mp3`` with no JSON (→ ``orphan_member``).
"""

from __future__ import annotations

import json
from pathlib import Path

from uniaudio.testing.archives import write_tar
from uniaudio.testing.audio import encode_audio, synth

__all__ = ["build"]

META = {
    "seg0001": {
        "segment_filename": "dQw4w9WgXcQ_15000_17000.mp3",
        "duration_ms": 2000,
        "start_time_ms": 15000,
        "title": "Morning podcast, episode 12",
        "like_count": 1204,
        "channel_follower_count": 58000,
        "caption": " A man speaks calmly in a quiet room. ",
    },
    "seg0002": {
        "segment_filename": "9bZkp7q19f0_60000_61500.mp3",
        "duration_ms": 1500,
        "start_time_ms": 60000,
        "title": "Street interview",
        "like_count": 3,
        "channel_follower_count": 120,
        "audio_caption": "Two people talk over traffic noise.",
    },
}



def build(root: Path) -> Path:
    """Write the LAION-Audio-300M fixture under ``root``; returns the directory holding the tar."""
    corpus = Path(root) / "LAION-Audio-300M"
    corpus.mkdir(parents=True, exist_ok=True)
    mp3 = {
        "seg0001": encode_audio(synth(2.0, 48000, seed=51), 48000, "mp3"),
        "seg0002": encode_audio(synth(1.5, 44100, channels=2, seed=52), 44100, "mp3"),
        "seg0003": encode_audio(synth(1.0, 48000, seed=53), 48000, "mp3"),
    }
    write_tar(corpus / "flash_20_voice_snippets_0.tar", [
        ("seg0001.metadata.json", json.dumps(META["seg0001"]).encode()),
        ("seg0001.audio.mp3", mp3["seg0001"]),
        ("seg0002.audio.mp3", mp3["seg0002"]),
        ("seg0002.metadata.json", json.dumps(META["seg0002"]).encode()),
        ("seg0003.audio.mp3", mp3["seg0003"]),
    ], mtime=1700000000)
    return corpus
