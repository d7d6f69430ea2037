"""A tiny WavCaps (spec: dataset-formats.md §8); ``build(root)`` returns ``root/WavCaps`` (the INPUT_URI).

* ``json_files/AudioSet_SL/as_final.json``: 2 items with ids ``Yb0RFKhbpFJA.wav`` and ``Y--PJHxphWEs.wav``
  (ids end in ``.wav``, files are ``.flac``; ``audio`` is the literal ``"wav_path"``).
* ``json_files/SoundBible/sb_final.json``: 1 item with SoundBible's extra fields (``title``,
  ``description``, ``author``, ``href``, ``download_link``).
* ``json_files/BBC_Sound_Effects/bbc_final.json``: 1 item whose FLAC is absent (→ ``missing_file``).
* ``json_files/blacklist/blacklist_exclude_test_ac.json``: ``{"AudioSet": ["--PJHxphWEs"], "FreeSound": []}``
  excludes the second AudioSet_SL item (listed without the ``Y``, matched anyway).
* Audio: an extracted tree with the full prefix
  ``Zip_files/AudioSet_SL/mnt/fast/nobackup/scratch4weeks/xm00178/WavCaps/data/waveforms/AudioSet_SL_flac/
  Yb0RFKhbpFJA.flac`` (32 kHz mono 2 s), and ``Zip_files/SoundBible/SoundBible.zip`` holding
  ``mnt/.../SoundBible_flac/2116.flac`` (44.1 kHz stereo 1.5 s) as a zip member.

JSON durations equal the fixture audio durations.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from uniaudio.testing.audio import encode_audio, synth, write_audio

__all__ = ["build"]

PREFIX = "mnt/fast/nobackup/scratch4weeks/xm00178/WavCaps/data/waveforms"

AS_ITEMS = [
    {"id": "Yb0RFKhbpFJA.wav", "caption": "Rain falls steadily on a tin roof.", "audio": "wav_path",
     "duration": 2.0},
    {"id": "Y--PJHxphWEs.wav", "caption": "A man speaks as water gushes.", "audio": "wav_path",
     "duration": 10.0},
]
SB_ITEMS = [
    {"title": "Dog Barking", "description": "A dog barks twice, then growls.", "author": "Mike Koenig",
     "href": "2116-Dog-Barking.html", "caption": "  A dog barks twice and then growls.  ",
     "id": "2116", "duration": 1.5, "download_link": "http://soundbible.com/grab.php?id=2116&type=wav",
     "audio": "wav_path"},
]
BBC_ITEMS = [
    {"id": "07070164.wav", "caption": "Church bells ringing in a village.", "audio": "wav_path",
     "duration": 3.0, "category": "['Bells']"},
]


def _write_json(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"num_captions_per_audio": 1, "data": items}, indent=1))


def build(root: Path) -> Path:
    """Write the WavCaps fixture under ``root``; returns the corpus root."""
    corpus = Path(root) / "WavCaps"
    js = corpus / "json_files"
    _write_json(js / "AudioSet_SL/as_final.json", AS_ITEMS)
    _write_json(js / "SoundBible/sb_final.json", SB_ITEMS)
    _write_json(js / "BBC_Sound_Effects/bbc_final.json", BBC_ITEMS)
    (js / "blacklist").mkdir(parents=True, exist_ok=True)
    (js / "blacklist/blacklist_exclude_test_ac.json").write_text(
        json.dumps({"AudioSet": ["--PJHxphWEs"], "FreeSound": []})
    )
    write_audio(corpus / f"Zip_files/AudioSet_SL/{PREFIX}/AudioSet_SL_flac/Yb0RFKhbpFJA.flac", 2.0, 32000, seed=31)
    zpath = corpus / "Zip_files/SoundBible/SoundBible.zip"
    zpath.parent.mkdir(parents=True, exist_ok=True)
    flac = encode_audio(synth(1.5, 44100, channels=2, seed=32), 44100, "flac")
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(f"{PREFIX}/SoundBible_flac/2116.flac", date_time=(2023, 3, 1, 0, 0, 0)), flac)
    return corpus
