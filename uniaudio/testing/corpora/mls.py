"""Tiny Multilingual LibriSpeech (German) in the OpenSLR FLAC and Opus trees and the HF parquet release.

:func:`build` writes ``<root>/mls`` and returns ``<root>/mls/mls_german`` (the FLAC tree, the
variant with the most traps). INPUT_URI per layout:

* ``<root>/mls/mls_german`` - OpenSLR 94 FLAC tree: ``metainfo.txt`` (space-padded header row plus 2
  rows, a title with a comma and quotes), ``train/{transcripts,segments}.txt`` listing 3 utterances of
  which 2 have FLACs (``train/audio/1234/5678/1234_5678_00000{0,1}.flac``) and the third is missing,
  ``train/limited_supervision/{1hr/0,9hr}/handles.txt`` (one utterance each), ``dev/`` with 1 utterance.
* ``<root>/mls/mls_german_opus`` - the same tree with ``.opus`` files written at 48 kHz.
* ``<root>/mls/multilingual_librispeech`` - ``german/train-00000-of-00001.parquet`` with the 10 HF
  columns (``speaker_id``/``chapter_id`` as strings) and embedded FLAC bytes for the 2 train clips.

Audio is 16 kHz mono (FLAC) and at most 1.6 s. Deterministic (fixed seeds).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.testing.audio import encode_audio, synth

__all__ = ["UTTERANCES", "build"]

URL = "http://www.archive.org/download/geschichten_0811_librivox/geschichten_01_hauff_64kb.mp3"

#: utt id → (split, transcript, begin, end, audio present)
UTTERANCES: dict[str, tuple[str, str, float, float, bool]] = {
    "1234_5678_000000": ("train", "es war einmal ein kleiner muck", 10.5, 12.0, True),
    "1234_5678_000001": ("train", "der wohnte in nicea", 12.0, 13.2, True),
    "1234_5678_000002": ("train", "diese datei fehlt", 13.2, 14.0, False),
    "4321_8765_000007": ("dev", "und so ging er weiter", 3.25, 4.85, True),
}

METAINFO = (
    " SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |             TITLE              |"
    "            CHAPTER            \n"
    "  1234     |     F      |   train    |   61.264   |    5678    | Die Geschichte \"vom\", kleinen Muck |"
    " Kapitel 1 \n"
    "  4321     |     M      |    dev     |   10.012   |    8765    | Märchen, Sagen und \"Schwänke\"  |"
    " 03 - Der Zwerg \n"
)


def _audio(utt: str, seed: int, suffix: str) -> bytes:
    _, _, begin, end, _ = UTTERANCES[utt]
    sr = 48000 if suffix == "opus" else 16000
    return encode_audio(synth(end - begin, sr, 1, seed=seed), sr, suffix)


def _tree(corpus: Path, suffix: str) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "metainfo.txt").write_text(METAINFO, encoding="utf-8")
    for split in ("train", "dev"):
        utts = [u for u, v in UTTERANCES.items() if v[0] == split]
        (corpus / split).mkdir(parents=True, exist_ok=True)
        (corpus / split / "transcripts.txt").write_text(
            "".join(f"{u}\t{UTTERANCES[u][1]}\n" for u in utts), encoding="utf-8"
        )
        (corpus / split / "segments.txt").write_text(
            "".join(f"{u}\t{URL}\t{UTTERANCES[u][2]:.2f}\t{UTTERANCES[u][3]:.2f}\n" for u in utts), encoding="utf-8"
        )
        for seed, utt in enumerate(utts):
            if UTTERANCES[utt][4]:
                spk, book, _ = utt.split("_")
                path = corpus / split / "audio" / spk / book / f"{utt}.{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_audio(utt, seed, suffix))
    limited = corpus / "train" / "limited_supervision"
    for fold, utt in (("1hr/0", "1234_5678_000000"), ("9hr", "1234_5678_000001")):
        (limited / fold).mkdir(parents=True, exist_ok=True)
        (limited / fold / "handles.txt").write_text(f"{utt}\n", encoding="utf-8")


def _parquet(path: Path) -> None:
    rows = []
    for seed, (utt, (_, text, begin, end, present)) in enumerate(UTTERANCES.items()):
        if UTTERANCES[utt][0] != "train" or not present:
            continue
        spk, book, _ = utt.split("_")
        rows.append({
            "audio": {"bytes": _audio(utt, seed, "flac"), "path": f"{utt}.flac"},
            "original_path": URL,
            "begin_time": begin,
            "end_time": end,
            "transcript": text,
            "audio_duration": end - begin,
            "speaker_id": spk,
            "chapter_id": book,
            "file": f"{utt}.opus",
            "id": utt,
        })
    schema = pa.schema([
        ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("original_path", pa.string()),
        ("begin_time", pa.float64()),
        ("end_time", pa.float64()),
        ("transcript", pa.string()),
        ("audio_duration", pa.float64()),
        ("speaker_id", pa.string()),
        ("chapter_id", pa.string()),
        ("file", pa.string()),
        ("id", pa.string()),
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def build(root: Path) -> Path:
    corpus = Path(root) / "mls"
    _tree(corpus / "mls_german", "flac")
    _tree(corpus / "mls_german_opus", "opus")
    _parquet(corpus / "multilingual_librispeech" / "german" / "train-00000-of-00001.parquet")
    return corpus / "mls_german"
