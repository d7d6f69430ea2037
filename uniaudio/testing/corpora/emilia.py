"""Tiny Emilia / Emilia-YODAS corpus in both released layouts.

:func:`build` writes ``<root>/emilia`` and returns it. INPUT_URI per layout:

* ``<root>/emilia/Emilia`` - HF WebDataset tar ``EN/EN-B000000.tar``: 2 pairs, the first stored
  ``.json`` before ``.mp3``, the second ``.mp3`` before ``.json``; ids follow the tar-index trap (tar 0
  holds batch ``B00000`` speakers ``S00000`` and ``S00010``); the JSON ``wav`` field is the raw-layout
  path, not the member name; plus an orphan ``.mp3`` member with no ``.json``.
* ``<root>/emilia/Emilia-YODAS`` - ``EN/EN-B000000.tar`` with one YODAS clip whose YouTube id starts
  with ``-`` and contains ``_``, with ``phone_count``.
* ``<root>/emilia/raw`` - ``EN/EN_B00000.jsonl`` with 2 lines, the second pointing to an mp3 that
  does not exist.
* ``<root>/emilia`` reads all three (ids do not overlap).

Every ``text`` starts with a space, as in the release. Each mp3 is 1 s, 24 kHz, mono.
"""

from __future__ import annotations

import json
from pathlib import Path

from uniaudio.testing.archives import write_tar
from uniaudio.testing.audio import encode_audio, synth

__all__ = ["CLIPS", "build"]

SR = 24000


def _clip(ident: str, speaker: str, text: str, duration: float, dnsmos: float, **extra: object) -> dict:
    batch = ident[:9]  # EN_B00000
    return {
        "id": ident,
        "wav": f"{batch}/{speaker}/mp3/{ident}.mp3",
        "text": text,
        "duration": duration,
        "speaker": speaker,
        "language": "en",
        "dnsmos": dnsmos,
        **extra,
    }


#: clip metadata by layout, as written (texts keep their leading space)
CLIPS: dict[str, list[dict]] = {
    "Emilia": [
        _clip("EN_B00000_S00000_W000000", "EN_B00000_S00000", " Hello there, this is the first clip.", 1.0, 3.31),
        _clip("EN_B00000_S00010_W000003", "EN_B00000_S00010", " And a second one, from another speaker.", 1.0,
              3.05),
    ],
    "Emilia-YODAS": [
        {
            "id": "EN_-Xy_z12AB3c_W000123",
            "wav": "EN_-Xy_z12AB3c/EN_-Xy_z12AB3c_W000123.mp3",
            "text": " Welcome back to the channel.",
            "duration": 1.0,
            "speaker": "EN_-Xy_z12AB3c_SPEAKER_00",
            "language": "en",
            "dnsmos": 3.12,
            "phone_count": 21,
        }
    ],
    "raw": [
        _clip("EN_B00000_S00001_W000000", "EN_B00000_S00001", " A raw layout clip.", 1.0, 3.4),
        _clip("EN_B00000_S00001_W000001", "EN_B00000_S00001", " Its mp3 was never extracted.", 1.0, 3.2),
    ],
}

ORPHAN_MEMBER = "EN_B00000_S00020_W000001.mp3"


def _mp3(seed: int) -> bytes:
    return encode_audio(synth(1.0, SR, 1, seed=seed), SR, "mp3")



def build(root: Path) -> Path:
    corpus = Path(root) / "emilia"
    for subset in ("Emilia", "Emilia-YODAS"):
        path = corpus / subset / "EN" / "EN-B000000.tar"
        members = []
        for i, clip in enumerate(CLIPS[subset]):
            pair = [(f"{clip['id']}.json", json.dumps(clip).encode()), (f"{clip['id']}.mp3", _mp3(i))]
            members += pair if i % 2 == 0 else pair[::-1]
        if subset == "Emilia":
            members.append((ORPHAN_MEMBER, _mp3(9)))
        write_tar(path, members, mtime=1700000000)

    lang_dir = corpus / "raw" / "EN"
    lang_dir.mkdir(parents=True, exist_ok=True)
    present = CLIPS["raw"][0]
    (lang_dir / present["wav"]).parent.mkdir(parents=True, exist_ok=True)
    (lang_dir / present["wav"]).write_bytes(_mp3(5))
    lines = [json.dumps(clip, ensure_ascii=False) for clip in CLIPS["raw"]]
    (lang_dir / "EN_B00000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus
