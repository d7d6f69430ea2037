"""A tiny AudioCaps (spec: dataset-formats.md §7); ``build(root)`` returns ``root/AudioCaps`` (the INPUT_URI).

* ``dataset/{train,val,test}.csv`` with the real header ``audiocap_id,youtube_id,start_time,caption``.
* train: 2 clips, one caption each; ``r1nicOVtvkQ`` has ``audio/train/Yr1nicOVtvkQ.wav`` (WavCaps/PANNs
  ``Y<ytid>`` name, 16 kHz mono 2 s), ``--0w1YA1Hm4`` (YTID starting with ``--``) has no audio (trap: one
  clip missing → ``missing_file``).
* val: one clip ``-1nicOVtvk_`` × 5 rows (5 captions; one quoted because it contains a comma), audio under the
  ``<ytid>_<start>`` name ``audio/val/-1nicOVtvk__30.wav`` (44.1 kHz stereo 2.5 s).
* test: one clip ``zzL8jVMcZrY`` × 5 rows, audio ``audio/test/YzzL8jVMcZrY.wav`` (32 kHz mono 1.5 s).
"""

from __future__ import annotations

from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["build"]

HEADER = "audiocap_id,youtube_id,start_time,caption\n"

CSVS = {
    "train": [
        "91139,r1nicOVtvkQ,130,A woman talks nearby as water pours",
        "58146,--0w1YA1Hm4,30,Multiple clanging and clanking sounds",
    ],
    "val": [
        "97151,-1nicOVtvk_,30,A man speaks while a motor runs",
        '97152,-1nicOVtvk_,30,"A motor runs, then a man speaks"',
        "97153,-1nicOVtvk_,30,An engine idles as a person talks",
        "97154,-1nicOVtvk_,30,A man talking over a running engine",
        "97155,-1nicOVtvk_,30,Engine humming and a man speaking",
    ],
    "test": [
        "103549,zzL8jVMcZrY,0,Birds chirp in the distance",
        "103550,zzL8jVMcZrY,0,Birds are chirping outdoors",
        "103551,zzL8jVMcZrY,0,Several birds sing",
        "103552,zzL8jVMcZrY,0,Chirping of birds with wind",
        "103553,zzL8jVMcZrY,0,Birds tweet while wind blows",
    ],
}


def build(root: Path) -> Path:
    """Write the AudioCaps fixture under ``root``; returns the corpus root."""
    corpus = Path(root) / "AudioCaps"
    (corpus / "dataset").mkdir(parents=True, exist_ok=True)
    for split, rows in CSVS.items():
        (corpus / "dataset" / f"{split}.csv").write_text(HEADER + "".join(f"{r}\n" for r in rows))
    write_audio(corpus / "audio/train/Yr1nicOVtvkQ.wav", 2.0, 16000, seed=21)
    write_audio(corpus / "audio/val/-1nicOVtvk__30.wav", 2.5, 44100, channels=2, seed=22)
    write_audio(corpus / "audio/test/YzzL8jVMcZrY.wav", 1.5, 32000, seed=23)
    return corpus
