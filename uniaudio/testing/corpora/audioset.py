"""A tiny AudioSet in both layouts the ``audioset`` source reads (spec: dataset-formats.md §6).

``build(root)`` writes and returns ``root/AudioSet`` (official CSV layout, the INPUT_URI for it); the HF
parquet variant is written beside it at ``root/AudioSet-hf`` (pass that directory for the parquet layout).

Official layout (``root/AudioSet``):

* ``{balanced_train,unbalanced_train,eval}_segments.csv`` with the 3 real ``#`` header lines and ``", "``
  separators. Segment times are kept consistent with the fixture audio (2–3 s instead of 10 s) so the
  metadata duration is exact.
* ``class_labels_indices.csv`` with quoted display names, some containing commas.
* Traps: row ``--PJHxphWEs`` (YTID starting with ``--``) with 3 quoted labels; YTIDs containing ``_``;
  a balanced row whose audio is absent (``0FMdORf5iGs``); a malformed unbalanced row (non-numeric start).
* Audio under the common dump names: ``audio/bal_train/--PJHxphWEs.flac`` (48 kHz mono, 3 s),
  ``audio/eval/YEg_Vl-TQ3Xo.wav`` (16 kHz mono, 2 s), ``audio/unbal_train/Ub-8_xK2mQo_10.wav``
  (44.1 kHz stereo, 2.5 s).

HF layout (``root/AudioSet-hf``): ``data/bal_train/00.parquet`` with 2 rows (``video_id``, ``audio``
{bytes: FLAC 48 kHz 1 s, path: ``audio/bal_train/<ytid>.flac``}, ``labels`` list of mids,
``human_labels`` list of names).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.testing.audio import encode_audio, synth, write_audio

__all__ = ["build"]

LABELS_CSV = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/05zppz,"Male speech, man speaking"
3,/m/0ytgt,"Child speech, kid speaking"
137,/m/04rlf,"Music"
288,/m/0838f,"Water"
295,/t/dd00088,"Gush"
"""

HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids={n}, num_segs={n}, num_unique_labels=527, num_positive_labels={p}\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)

SEGMENTS = {
    "balanced_train_segments.csv": [
        '--PJHxphWEs, 30.000, 33.000, "/m/09x0r,/t/dd00088,/m/05zppz"',
        '0FMdORf5iGs, 0.000, 2.000, "/m/04rlf"',
    ],
    "eval_segments.csv": [
        'Eg_Vl-TQ3Xo, 0.000, 2.000, "/m/0ytgt,/m/09x0r"',
    ],
    "unbalanced_train_segments.csv": [
        'Ub-8_xK2mQo, 10.000, 12.500, "/m/0838f"',
        'bAdRow12345, ten, 20.000, "/m/04rlf"',
    ],
}


def _write_official(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "class_labels_indices.csv").write_text(LABELS_CSV)
    for name, rows in SEGMENTS.items():
        n_labels = sum(row.split('"')[1].count(",") + 1 for row in rows)
        text = HEADER.format(n=len(rows), p=n_labels) + "".join(f"{row}\n" for row in rows)
        (corpus / name).write_text(text)
    write_audio(corpus / "audio/bal_train/--PJHxphWEs.flac", 3.0, 48000, seed=1)
    write_audio(corpus / "audio/eval/YEg_Vl-TQ3Xo.wav", 2.0, 16000, seed=2)
    write_audio(corpus / "audio/unbal_train/Ub-8_xK2mQo_10.wav", 2.5, 44100, channels=2, seed=3)


def _write_hf(corpus: Path) -> None:
    rows = [
        ("--PJHxphWEs", ["/m/09x0r", "/t/dd00088"], ["Speech", "Gush"]),
        ("-0RWZT-miFs", ["/m/04rlf"], ["Music"]),
    ]
    audio = [
        {"bytes": encode_audio(synth(1.0, 48000, seed=10 + i), 48000, "flac"), "path": f"audio/bal_train/{y}.flac"}
        for i, (y, _, _) in enumerate(rows)
    ]
    table = pa.table(
        {
            "video_id": [r[0] for r in rows],
            "audio": pa.array(audio, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "labels": pa.array([r[1] for r in rows], type=pa.list_(pa.string())),
            "human_labels": pa.array([r[2] for r in rows], type=pa.list_(pa.string())),
        }
    )
    out = corpus / "data/bal_train/00.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)


def build(root: Path) -> Path:
    """Write both AudioSet layouts under ``root``; returns the official-CSV corpus root."""
    root = Path(root)
    _write_official(root / "AudioSet")
    _write_hf(root / "AudioSet-hf")
    return root / "AudioSet"
