"""Tiny generic-manifest corpus: the same 3 clips described in all four manifest forms.

:func:`build` writes ``<root>/manifest`` and returns it. Pass one form directory as INPUT_URI to
``uniaudio ingest manifest``:

* ``<root>/manifest/audiofolder`` - HF AudioFolder with split dirs: ``train/metadata.csv`` (UTF-8 BOM,
  CRLF line endings, an extra ``comment`` column, a non-ASCII transcript with a quoted comma, a row
  whose file is missing) and ``test/metadata.jsonl``.
* ``<root>/manifest/nemo`` - ``manifest.jsonl`` (NeMo) with ``offset``/``duration``, paths relative to
  the manifest (``../audio/a.wav``), a missing file and one line that is not JSON.
* ``<root>/manifest/kaldi`` - ``wav.scp`` (CRLF), ``segments``, ``text`` (non-ASCII), ``utt2spk``;
  one segment on a recording whose file is missing.
* ``<root>/manifest/fairseq`` - ``train.tsv`` (root line ``../audio``) + ``train.wrd``, a missing file.
* ``<root>/manifest`` itself reads as the Kaldi form (``kaldi/wav.scp`` is found one level down, like
  ``data/<dir>/wav.scp``), with keys ``manifest/manifest/<utt>``.

Audio (``<root>/manifest/audio``): ``a.wav`` 2.0 s 16 kHz mono, ``b.flac`` 1.5 s 44.1 kHz stereo,
``c.mp3`` 1.0 s 24 kHz mono. Deterministic (fixed seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["CLIPS", "build"]

# name → (duration_s, sample_rate, channels)
CLIPS = {"a.wav": (2.0, 16000, 1), "b.flac": (1.5, 44100, 2), "c.mp3": (1.0, 24000, 1)}

NON_ASCII = "Grüße aus Köln, naïve café — 你好"


def _write(path: Path, text: str, *, crlf: bool = False, bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))


def build(root: Path) -> Path:
    corpus = Path(root) / "manifest"
    for seed, (name, (duration, sr, channels)) in enumerate(CLIPS.items()):
        write_audio(corpus / "audio" / name, duration, sr, channels, seed=seed)
        if name != "c.mp3":
            write_audio(corpus / "audiofolder" / "train" / name, duration, sr, channels, seed=seed)
    write_audio(corpus / "audiofolder" / "test" / "c.mp3", *CLIPS["c.mp3"], seed=2)

    _write(
        corpus / "audiofolder" / "train" / "metadata.csv",
        "file_name,transcription,speaker_id,comment\n"
        "a.wav,hello world,spk1,clean\n"
        f'b.flac,"{NON_ASCII}",spk2,stereo 44.1k\n'
        "gone.wav,this file is missing,spk1,\n",
        crlf=True,
        bom=True,
    )
    _write(
        corpus / "audiofolder" / "test" / "metadata.jsonl",
        json.dumps({"file_name": "c.mp3", "text": "  a short mp3 clip ", "duration": 1.0}) + "\n",
    )

    nemo_lines = [
        json.dumps({"audio_filepath": "../audio/a.wav", "offset": 0.5, "duration": 1.0, "text": "first part"}),
        json.dumps({"audio_filepath": "../audio/c.mp3", "duration": 1.0, "text": "mp3 clip", "lang": "en"}),
        json.dumps({"audio_filepath": "../audio/missing.wav", "duration": 2.0, "text": "nothing here"}),
        '{"audio_filepath": "../audio/b.flac", "duration": ',
        json.dumps({"audio_filepath": "../audio/b.flac", "duration": 1.5, "text": NON_ASCII, "snr": 20.5},
                   ensure_ascii=False),
    ]
    _write(corpus / "nemo" / "manifest.jsonl", "\n".join(nemo_lines) + "\n", bom=True)

    kaldi = corpus / "kaldi"
    _write(kaldi / "wav.scp", "rec1 ../audio/a.wav\nrec2 ../audio/b.flac\nrec3 ../audio/gone.wav\n", crlf=True)
    _write(kaldi / "segments", "utt1 rec1 0.0 1.0\nutt2 rec1 1.0 2.0\nutt3 rec2 0.25 1.5\nutt4 rec3 0 1\n")
    _write(kaldi / "text", f"utt1 HELLO THERE\nutt2 {NON_ASCII}\nutt3 stereo  input\nutt4 lost\n", crlf=True)
    _write(kaldi / "utt2spk", "utt1 spkA\nutt2 spkA\nutt3 spkB\nutt4 spkB\n")

    fairseq = corpus / "fairseq"
    _write(fairseq / "train.tsv", "../audio\na.wav\t32000\nb.flac\t66150\ngone.flac\t16000\n")
    _write(fairseq / "train.wrd", "HELLO WORLD\nSTEREO CLIP\nGONE\n")
    return corpus
