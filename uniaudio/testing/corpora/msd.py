"""A tiny Million Song Dataset + LP-MusicCaps-MSD (spec: dataset-formats.md §10).

``build(root)`` returns ``root/MSD`` (the INPUT_URI; previews and captions are found at their defaults):

* ``data/A/B/C/TRABCEI128F424C983.h5`` and ``data/B/F/C/TRBFCLN128F4262FC4.h5`` (the full dataset's
  layout; the source also reads the 10k subset's ``MillionSongSubset/data/...``), written with h5py
  like PyTables does: one-row compound ``songs`` tables in ``/metadata``, ``/analysis``, ``/musicbrainz``
  with fixed-width byte strings, plus arrays
  (``metadata/artist_terms``/``_freq``/``_weight``, ``metadata/similar_artists``,
  ``analysis/segments_start``, ``analysis/segments_pitches`` N×12, ``musicbrainz/artist_mbtags``).
  The first track has NaN floats (``artist_familiarity``, ``song_hotttnesss``), empty strings (``genre``,
  ``release``) and ``year`` 0.
* ``AdditionalFiles/unique_tracks.txt`` with ``<SEP>`` separators (a side file the source does not need).
* ``previews/1/2/1234567.clip.mp3`` (preview of the first track, 44.1 kHz stereo 3 s) and the zero-byte
  ``previews/7/6/7654321.clip.mp3`` of the second (→ ``zero_byte``).
* ``LP-MusicCaps-MSD/data/train-00000-of-00001.parquet``: 3 rows with the real columns; two link the
  tracks above, the third (``TRAAABD128F429CF47``) has no track file (ignored).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.testing.audio import write_audio

__all__ = ["build"]

METADATA_DTYPE = np.dtype([
    ("analyzer_version", "S32"), ("artist_7digitalid", "<i4"), ("artist_familiarity", "<f8"),
    ("artist_hotttnesss", "<f8"), ("artist_id", "S32"), ("artist_mbid", "S40"), ("artist_name", "S1024"),
    ("genre", "S1024"), ("idx_artist_terms", "<i4"), ("idx_similar_artists", "<i4"), ("release", "S1024"),
    ("release_7digitalid", "<i4"), ("song_hotttnesss", "<f8"), ("song_id", "S32"), ("title", "S1024"),
    ("track_7digitalid", "<i4"),
])
ANALYSIS_DTYPE = np.dtype([
    ("analysis_sample_rate", "<i4"), ("audio_md5", "S32"), ("duration", "<f8"), ("idx_segments_start", "<i4"),
    ("key", "<i4"), ("loudness", "<f8"), ("mode", "<i4"), ("tempo", "<f8"), ("time_signature", "<i4"),
    ("track_id", "S32"),
])
MUSICBRAINZ_DTYPE = np.dtype([("idx_artist_mbtags", "<i4"), ("year", "<i4")])

TRACKS = [
    {
        "path": "A/B/C/TRABCEI128F424C983.h5",
        "metadata": ("", 165270, float("nan"), 0.40, "ARD7TVE1187B99BFB1", "e77e51a5-4761-45b3-9847-2051f811e366",
                     "Casual", "", 0, 0, "", 300848, float("nan"), "SOMZWCG12A8C13C480", "I Didn't Mean To",
                     1234567),
        "analysis": (22050, "a222795e07cd65b7a530f1346f520649", 218.93179, 0, 1, -11.197, 0, 92.198, 4,
                     "TRABCEI128F424C983"),
        "year": 0,
        "terms": [b"hip hop", b"underground rap", b"g funk"],
    },
    {
        "path": "B/F/C/TRBFCLN128F4262FC4.h5",
        "metadata": ("", 38567, 0.61, 0.45, "ARMJAGH1187FB546F3", "", "The Box Tops", "pop rock", 0, 0,
                     "Dimensions", 300822, 0.60, "SOCIWDW12A8C13D406", "Soul Deep", 7654321),
        "analysis": (22050, "b3c2a6ed0b5d3e7c28a4b5a9a0f8d9e1", 148.03546, 0, 6, -9.843, 0, 121.274, 4,
                     "TRBFCLN128F4262FC4"),
        "year": 1969,
        "terms": [b"blue-eyed soul", b"pop rock"],
    },
]

LP_ROWS = [
    {"track_id": "TRABCEI128F424C983", "title": "I Didn't Mean To", "artist_name": "Casual", "release": "",
     "year": 0, "tag": ["hip hop", "underground rap"],
     "caption_writing": " A laid-back hip hop track with a deep bassline and relaxed rapping. ",
     "caption_summary": "Laid-back underground hip hop.",
     "caption_paraphrase": "This relaxed hip hop song rides a deep bassline under calm rapping.",
     "caption_attribute_prediction": "hip hop, bass, rap, relaxed",
     "pseudo_attribute": ["deep bassline", "relaxed"], "path": "1/2/1234567.clip.mp3"},
    {"track_id": "TRBFCLN128F4262FC4", "title": "Soul Deep", "artist_name": "The Box Tops",
     "release": "Dimensions", "year": 1969, "tag": ["soul", "pop rock"],
     "caption_writing": "A 60s blue-eyed soul song with horns and a raspy lead vocal.",
     "caption_summary": "Sixties soul with horns.",
     "caption_paraphrase": "Horns and a raspy voice drive this 1960s soul tune.",
     "caption_attribute_prediction": "soul, horns", "pseudo_attribute": ["horns"],
     "path": "7/6/7654321.clip.mp3"},
    {"track_id": "TRAAABD128F429CF47", "title": "Soul Deep", "artist_name": "The Box Tops",
     "release": "Dimensions", "year": 1969, "tag": ["soul"],
     "caption_writing": "An alternate take of a soul song.", "caption_summary": "Soul.",
     "caption_paraphrase": "A soul tune, alternate take.", "caption_attribute_prediction": "soul",
     "pseudo_attribute": [], "path": "3/0/300000.clip.mp3"},
]


def _write_track(path: Path, track: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(track["terms"]))
    with h5py.File(path, "w") as h5:
        meta = h5.create_group("metadata")
        meta.create_dataset("songs", data=np.array([track["metadata"]], dtype=METADATA_DTYPE), track_times=False)
        terms = np.array(track["terms"], dtype="S256")
        meta.create_dataset("artist_terms", data=terms, track_times=False)
        meta.create_dataset("artist_terms_freq", data=rng.random(len(terms)), track_times=False)
        meta.create_dataset("artist_terms_weight", data=rng.random(len(terms)), track_times=False)
        meta.create_dataset("similar_artists", data=np.array([b"ARV4KO21187FB38008"], dtype="S20"), track_times=False)
        analysis = h5.create_group("analysis")
        analysis.create_dataset("songs", data=np.array([track["analysis"]], dtype=ANALYSIS_DTYPE), track_times=False)
        analysis.create_dataset("segments_start", data=np.linspace(0.0, 2.0, 8), track_times=False)
        analysis.create_dataset("segments_pitches", data=rng.random((8, 12)), track_times=False)
        mb = h5.create_group("musicbrainz")
        mb.create_dataset("songs", data=np.array([(0, track["year"])], dtype=MUSICBRAINZ_DTYPE), track_times=False)
        mb.create_dataset("artist_mbtags", data=np.array([], dtype="S256"), track_times=False)


def _write_lp(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    types = {"year": pa.int64(), "tag": pa.list_(pa.string()), "pseudo_attribute": pa.list_(pa.string())}
    table = pa.table({k: pa.array([r[k] for r in LP_ROWS], type=types.get(k, pa.string())) for k in LP_ROWS[0]})
    pq.write_table(table, path)


def build(root: Path) -> Path:
    """Write the MSD fixture under ``root``; returns the corpus root."""
    corpus = Path(root) / "MSD"
    for track in TRACKS:
        _write_track(corpus / "data" / track["path"], track)
    unique = "".join(
        f"{t['analysis'][-1]}<SEP>{t['metadata'][13]}<SEP>{t['metadata'][6]}<SEP>{t['metadata'][14]}\n"
        for t in TRACKS
    )
    (corpus / "AdditionalFiles").mkdir(parents=True, exist_ok=True)
    (corpus / "AdditionalFiles/unique_tracks.txt").write_text(unique)
    write_audio(corpus / "previews/1/2/1234567.clip.mp3", 3.0, 44100, channels=2, seed=71)
    (corpus / "previews/7/6").mkdir(parents=True, exist_ok=True)
    (corpus / "previews/7/6/7654321.clip.mp3").write_bytes(b"")
    _write_lp(corpus / "LP-MusicCaps-MSD/data/train-00000-of-00001.parquet")
    return corpus
