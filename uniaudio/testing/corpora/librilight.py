"""Tiny LibriLight: VAD-annotated chapters in ``small/`` and ``medium/`` plus a fine-tuning tree.

:func:`build` writes ``<root>/libri-light-flac`` and returns it (the INPUT_URI). The corpus directory
name contains "flac" on purpose: a reader that finds the JSON with ``str(path).replace("flac", "json")``
looks in the wrong directory. Contents:

* ``small/960/history_of_holland_librivox/holland_01.flac`` (3 s, 16 kHz mono) + ``holland_01.json``
  with 2 ``voice_activity`` spans, a ``book_meta.genre`` list and ``snr``.
* ``medium/10/alice's_adventures_(vol.1)_librivox/`` (punctuation and a dot in the book name):
  ``alice_01.flac`` (2 s) + JSON with 1 span, and ``alice_02.flac`` with no JSON beside it.
* ``librispeech_finetuning/1h/0/clean/1089/134686/`` with one FLAC (1 s) and its ``.trans.txt``.
"""

from __future__ import annotations

import json
from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["FILES", "build"]

HOLLAND = "small/960/history_of_holland_librivox/holland_01"
ALICE = "medium/10/alice's_adventures_(vol.1)_librivox/alice_01"
ALICE_NO_JSON = "medium/10/alice's_adventures_(vol.1)_librivox/alice_02"

#: stem → (duration_s, JSON sidecar or None)
FILES: dict[str, tuple[float, dict | None]] = {
    HOLLAND: (3.0, {
        "speaker": "960",
        "book_meta": {
            "id": "5498",
            "title": "History of Holland",
            "genre": ["History", "*Non-fiction"],
            "Dramatic Readings": False,
            "meta_genre": "Literature",
            "url_librivox": "https://librivox.org/history-of-holland-by-george-edmundson/",
        },
        "snr": 12.417,
        "voice_activity": [[0.12, 1.4], [1.75, 2.9]],
    }),
    ALICE: (2.0, {
        "speaker": "10",
        "book_meta": {"id": "11", "title": "Alice's Adventures in Wonderland (version 1)",
                      "genre": ["Children's Fiction"], "Dramatic Readings": False, "meta_genre": "Literature"},
        "snr": 8.5,
        "voice_activity": [[0.3, 1.85]],
    }),
    ALICE_NO_JSON: (1.0, None),
}

FINETUNING_UTT = ("1089-134686-0000", "HE HOPED THERE WOULD BE STEW FOR DINNER")


def build(root: Path) -> Path:
    corpus = Path(root) / "libri-light-flac"
    for seed, (stem, (duration, sidecar)) in enumerate(FILES.items()):
        write_audio(corpus / f"{stem}.flac", duration, 16000, seed=seed)
        if sidecar is not None:
            (corpus / f"{stem}.json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    chapter = corpus / "librispeech_finetuning" / "1h" / "0" / "clean" / "1089" / "134686"
    write_audio(chapter / f"{FINETUNING_UTT[0]}.flac", 1.0, 16000, seed=7)
    (chapter / "1089-134686.trans.txt").write_text(" ".join(FINETUNING_UTT) + "\n", encoding="utf-8")
    return corpus
