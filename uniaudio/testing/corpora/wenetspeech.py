"""Tiny WenetSpeech: ``WenetSpeech.json`` plus long Opus recordings at the JSON's paths.

:func:`build` writes ``<root>/wenetspeech`` and returns it (the INPUT_URI; the JSON file itself works
too). ``WenetSpeech.json`` has the real top-level keys and 3 audios:

* ``Y0000000000_--5llN02F84`` (youtube, id with ``--``), 2 segments with subsets ``["L","M","S"]``
  (text with a full-width space ``U+3000``) and ``["L"]``; carries a stale ``batch_id`` key.
* ``P0000000001`` (podcast), 1 segment with subsets ``["DEV"]``.
* ``Y0000000002_a-b_c`` (youtube, ``TEST_NET``) whose opus file is missing.

The two present recordings are 3 s, 16 kHz mono Opus.
"""

from __future__ import annotations

import json
from pathlib import Path

from uniaudio.testing.audio import write_audio

__all__ = ["METADATA", "build"]


def _segment(aid: str, n: int, begin: float, end: float, subsets: list[str], text: str) -> dict:
    return {"sid": f"{aid}_S{n:05d}", "confidence": 1.0 if "DEV" in subsets else 0.98,
            "begin_time": begin, "end_time": end, "subsets": subsets, "text": text}


METADATA = {
    "dataset": "WenetSpeech",
    "language": "Chinese Mandarin",
    "version": "v1.0",
    "description": "tiny fixture",
    "url": "https://wenet-e2e.github.io/WenetSpeech/",
    "audios": [
        {
            "aid": "Y0000000000_--5llN02F84",
            "duration": 3.0,
            "md5": "48af998ec7dab6964386c3522386fa4b",
            "path": "audio/train/youtube/B00000/Y0000000000_--5llN02F84.opus",
            "source": "youtube",
            "tags": ["drama"],
            "url": "https://www.youtube.com/watch?v=--5llN02F84",
            "batch_id": "B00000",
            "segments": [
                _segment("Y0000000000_--5llN02F84", 0, 0.0, 1.2, ["L", "M", "S"], "怎么样　这些日子住得还习惯吧"),
                _segment("Y0000000000_--5llN02F84", 1, 1.5, 2.9, ["L"], "挺好的"),
            ],
        },
        {
            "aid": "P0000000001",
            "duration": 3.0,
            "md5": "0f5aa1d7a1b2c3d4e5f60718293a4b5c",
            "path": "audio/dev/third_party/B00000/P0000000001.opus",
            "source": "podcast",
            "tags": ["news"],
            "url": "https://example.org/podcast/1",
            "segments": [_segment("P0000000001", 0, 0.4, 2.6, ["DEV"], " 今天的新闻就到这里 ")],
        },
        {
            "aid": "Y0000000002_a-b_c",
            "duration": 3.0,
            "md5": "aa",
            "path": "audio/test_net/youtube/B00000/Y0000000002_a-b_c.opus",
            "source": "youtube",
            "tags": ["vlog"],
            "url": "https://www.youtube.com/watch?v=a-b_c",
            "segments": [_segment("Y0000000002_a-b_c", 0, 0.0, 1.0, ["TEST_NET"], "这个文件不见了")],
        },
    ],
}


def build(root: Path) -> Path:
    corpus = Path(root) / "wenetspeech"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "WenetSpeech.json").write_text(json.dumps(METADATA, ensure_ascii=False, indent=1), encoding="utf-8")
    (corpus / "TERMS_OF_ACCESS").write_text("fixture\n", encoding="utf-8")
    for seed, audio in enumerate(METADATA["audios"][:2]):
        write_audio(corpus / audio["path"], 3.0, 16000, seed=seed)
    return corpus
