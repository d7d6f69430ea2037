"""Tiny LibriSpeech: one chapter of ``dev-clean``; every other part is absent (parts are optional).

:func:`build` writes ``<root>/LibriSpeech`` and returns it (the INPUT_URI). Contents:

* ``SPEAKERS.TXT`` with the ``;`` comment header, speaker 1272 and the ``60 | M | train-clean-100 |
  20.18 | |CBW|Simon`` row (a name containing ``|``); ``CHAPTERS.TXT``, ``BOOKS.TXT``, ``README.TXT``.
* ``dev-clean/1272/128104/1272-128104-000{0,1}.flac`` (1.5 s and 2.0 s, 16 kHz mono),
  ``1272-128104.trans.txt`` listing a third utterance whose FLAC is missing, and
  ``1272-128104.alignment.txt`` aligning utterance 0000 only (silences as empty words).
"""

from __future__ import annotations

from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["TRANSCRIPTS", "build"]

TRANSCRIPTS = {
    "1272-128104-0000": "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES",
    "1272-128104-0001": "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING THAN HIS MATTER",
    "1272-128104-0002": "THIS FLAC WAS NEVER WRITTEN",
}
DURATIONS = {"1272-128104-0000": 1.5, "1272-128104-0001": 2.0}

SPEAKERS = """\
; Some of the speakers in this list are not in the corpus.
;
; ID      |SEX| SUBSET           |MINUTES| NAME
14      | F | train-clean-360  | 25.03 | Kristin LeMoine
60      | M | train-clean-100  | 20.18 | |CBW|Simon
1272    | M | dev-clean        |  8.08 | John Rose
"""

CHAPTERS = """\
; ID      |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE
128104  | 1272 |  4.27 | dev-clean        | 4212 | 1597  | Chapter 1 | Sesame and Lilies
"""

ALIGNMENT = (
    '1272-128104-0000 ",MISTER,QUILTER,IS,THE,APOSTLE,OF,THE,MIDDLE,CLASSES," '
    '"0.200,0.380,0.570,0.630,0.700,1.000,1.080,1.150,1.320,1.450,1.500"\n'
)


def build(root: Path) -> Path:
    corpus = Path(root) / "LibriSpeech"
    chapter = corpus / "dev-clean" / "1272" / "128104"
    chapter.mkdir(parents=True, exist_ok=True)
    (corpus / "SPEAKERS.TXT").write_text(SPEAKERS, encoding="utf-8")
    (corpus / "CHAPTERS.TXT").write_text(CHAPTERS, encoding="utf-8")
    (corpus / "BOOKS.TXT").write_text("1597 | Sesame and Lilies | John Ruskin\n", encoding="utf-8")
    (corpus / "README.TXT").write_text("LibriSpeech ASR corpus (tiny fixture)\n", encoding="utf-8")
    for seed, (utt, duration) in enumerate(DURATIONS.items()):
        write_audio(chapter / f"{utt}.flac", duration, 16000, seed=seed)
    (chapter / "1272-128104.trans.txt").write_text(
        "".join(f"{utt} {text}\n" for utt, text in TRANSCRIPTS.items()), encoding="utf-8"
    )
    (chapter / "1272-128104.alignment.txt").write_text(ALIGNMENT, encoding="utf-8")
    return corpus
