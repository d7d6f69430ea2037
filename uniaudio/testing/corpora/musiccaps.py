"""A tiny MusicCaps (spec: dataset-formats.md §9); ``build(root)`` returns ``root/MusicCaps`` (the INPUT_URI).

``musiccaps-public.csv`` with the real header and 3 rows:

* ``-0Gj8-vB1q4``: caption with commas and an embedded newline inside quotes; audio
  ``audio/-0Gj8-vB1q4.wav`` (44.1 kHz stereo 3 s).
* ``-0SdAVK79lg``: ``aspect_list`` with an apostrophe (``["80's pop", 'synth']``, CSV-escaped as
  ``"[""80's pop"", 'synth']"``); audio ``audio/-0SdAVK79lg.wav`` (48 kHz mono 2 s).
* ``-0vPFx-wRRI``: an eval row (``is_audioset_eval`` True → split ``test``) whose audio is absent
  (→ ``missing_file``).

Times are kept consistent with the fixture audio (``end_s - start_s`` equals the clip length).
"""

from __future__ import annotations

from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["build"]

CSV_TEXT = (
    "ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,"
    "is_audioset_eval\n"
    "-0Gj8-vB1q4,30,33,\"/m/0140xf,/m/02cjck,/m/04rlf\",\"['low quality', 'sustained strings melody', "
    "'soft female vocal']\",\"The low quality recording features a ballad song, with sustained strings,\n"
    "soft female vocal and mellow piano.\",4,False,False\n"
    "-0SdAVK79lg,30,32,\"/m/04rlf,/m/064t9\",\"[\"\"80's pop\"\", 'synth']\","
    "\"An 80's pop song with a bright synth lead.\",0,True,False\n"
    "-0vPFx-wRRI,30,33,/m/04rlf,\"['instrumental', 'jazz']\",\"A jazz trio plays a \"\"walking\"\" bass line.\","
    "6,False,True\n"
)


def build(root: Path) -> Path:
    """Write the MusicCaps fixture under ``root``; returns the corpus root."""
    corpus = Path(root) / "MusicCaps"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "musiccaps-public.csv").write_text(CSV_TEXT)
    write_audio(corpus / "audio/-0Gj8-vB1q4.wav", 3.0, 44100, channels=2, seed=41)
    write_audio(corpus / "audio/-0SdAVK79lg.wav", 2.0, 48000, seed=42)
    return corpus
