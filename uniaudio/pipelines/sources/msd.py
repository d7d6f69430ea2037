"""Million Song Dataset: per-track HDF5 files + 7digital preview MP3s + LP-MusicCaps-MSD captions.

Layout accepted (``input_uri`` is the directory holding it):

* Track files ``data/<A>/<B>/<C>/<TRACKID>.h5`` (``A, B, C = TRACKID[2:5]``), at any depth (the full
  dataset's ``data/`` or the 10k subset's ``MillionSongSubset/data/``). They are PyTables files read with
  h5py: one-row compound tables ``metadata/songs``, ``analysis/songs``, ``musicbrainz/songs`` plus arrays
  (``metadata/artist_terms``, ...). Strings are fixed-width bytes (decoded; empty → ``None``), floats can be
  NaN (→ ``None``). Side files (``unique_tracks.txt``, ``msd_summary_file.h5``, ``track_metadata.db``) are
  not needed. One partition per ``data/<A>`` folder (26 for the full set).
* Previews under ``previews_uri`` (option; default ``<input_uri>/previews``) at
  ``<d0>/<d1>/<track_7digitalid>.clip.mp3`` (first two digits of the 7digital id).
* Optional LP-MusicCaps-MSD parquet (``data/{train,valid,test}-*.parquet``) under ``captions_uri``
  (option; default ``<input_uri>/LP-MusicCaps-MSD`` when present), read with
  :mod:`~uniaudio.pipelines.sources.hf_tables` and joined on ``track_id``. Each partition keeps only the
  caption rows of its ``<A>`` letter, so memory stays at about 1/26 of the table.

Record mapping: ``key`` ``msd/<TRACKID>``; ``audio_uri`` the preview; ``duration_s`` ``None`` (the HDF5
``duration`` is the full track's, kept in meta; previews are ~30 s and vary); ``sample_rate`` ``None``
(previews vary; probed later); ``caption`` LP ``caption_writing``; ``labels`` LP ``tag`` list; ``split`` the
LP file's split (``train``/``valid``/``test``), ``None`` without captions; ``meta``: ``track_id``,
``song_id``, ``title``, ``artist_name``, ``artist_id``, ``release``, ``year`` (``None`` for 0), ``genre``,
``track_7digitalid``, ``duration``, ``tempo``, ``key``, ``mode``, ``loudness``, ``time_signature``,
``artist_familiarity``, ``song_hotttnesss``, ``artist_terms``, and from LP ``caption_summary``,
``caption_paraphrase``, ``pseudo_attribute``, ``lp_path`` (``caption_attribute_prediction`` is left out, as
its authors advise).

Rejects: ``malformed_metadata`` (unreadable HDF5, missing tables, no 7digital id), ``missing_file``
(no preview), ``zero_byte`` (empty preview, as some research dumps have).
"""

from __future__ import annotations

import io
import math
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.hf_tables import iter_table_rows, table_files

__all__ = ["MsdSource", "preview_path", "read_track"]

_TRACK_FILE = re.compile(r"(?:^|/)data/([A-Z])/([A-Z])/([A-Z])/(TR[A-Z0-9]{16})\.h5$")
_LP_SPLIT = re.compile(r"^([a-z]+)[-_.]")

METADATA_FIELDS = ("artist_name", "artist_id", "title", "release", "song_id", "genre", "track_7digitalid",
                   "artist_familiarity", "song_hotttnesss")
ANALYSIS_FIELDS = ("track_id", "duration", "tempo", "key", "mode", "loudness", "time_signature")
LP_META = ("caption_summary", "caption_paraphrase", "pseudo_attribute")


def preview_path(track_7digitalid: int) -> str:
    """``1234567`` → ``1/2/1234567.clip.mp3`` (research-dump layout of 7digital previews)."""
    digits = str(track_7digitalid)
    return f"{digits[0]}/{digits[1]}/{digits}.clip.mp3"


def _value(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        text = bytes(value).decode("utf-8", errors="replace").strip()
        return text or None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(float(value)) else float(value)
    return value


def _row(group: h5py.Group, fields: tuple[str, ...]) -> dict[str, Any]:
    table = group["songs"]
    row = table[0]
    names = table.dtype.names or ()
    return {f: _value(row[f]) for f in fields if f in names}


def read_track(data: bytes) -> dict[str, Any]:
    """The fields uniaudio keeps from one MSD track file (``KeyError``/``OSError`` if it is not one)."""
    with h5py.File(io.BytesIO(data), "r") as h5:
        out = _row(h5["metadata"], METADATA_FIELDS)
        out.update(_row(h5["analysis"], ANALYSIS_FIELDS))
        out.update(_row(h5["musicbrainz"], ("year",)))
        terms = h5["metadata"].get("artist_terms")
        out["artist_terms"] = [t for t in (_value(x) for x in terms[()]) if t] if terms is not None else []
    if out.get("year") == 0:
        out["year"] = None
    return out


class MsdSource(Source):
    name = "msd"
    layouts = (
        "MSD HDF5 tracks data/<A>/<B>/<C>/<TRACKID>.h5 + previews/<d0>/<d1>/<7digitalid>.clip.mp3 "
        "[+ LP-MusicCaps-MSD parquet captions]",
    )
    accepted_options = ("previews_uri", "captions_uri")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.previews_uri = str(options.get("previews_uri") or storage.join(self.input_uri, "previews"))
        captions = options.get("captions_uri")
        if captions and not storage.exists(str(captions)):
            raise SourceError(f"captions_uri {captions} does not exist")
        default = storage.join(self.input_uri, "LP-MusicCaps-MSD")
        self.captions_uri = str(captions) if captions else (default if storage.exists(default) else None)

    def partitions(self) -> list[str]:
        parts = set()
        for uri in storage.glob(self.input_uri, "**/*.h5"):
            rel = uri[len(self.input_uri) :].lstrip("/")
            match = _TRACK_FILE.search(rel)
            if match:
                parts.add(rel[: match.start(1)] + match.group(1))
        if not parts:
            raise SourceError(f"{self.input_uri}: no MSD track files (expected data/<A>/<B>/<C>/TR*.h5)")
        return sorted(parts)

    def _captions(self, letter: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
        """``track_id → (split, LP row)`` for the tracks whose id has ``letter`` at index 2."""
        out: dict[str, tuple[str | None, dict[str, Any]]] = {}
        if self.captions_uri is None:
            return out
        for uri in table_files(self.captions_uri):
            match = _LP_SPLIT.match(posixpath.basename(uri))
            split = match.group(1) if match else None
            for _, row in iter_table_rows(uri):
                track_id = str(row.get("track_id") or "")
                if track_id[2:3] == letter:
                    out.setdefault(track_id, (split, row))
        return out

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        letter = partition[-1]
        captions = self._captions(letter)
        for uri in storage.glob(storage.join(self.input_uri, partition), "*/*/TR*.h5"):
            track_id = posixpath.basename(uri)[: -len(".h5")]
            key = make_key(self.name, track_id)
            try:
                track = read_track(storage.read_bytes(uri))
            except (OSError, KeyError, IndexError, ValueError) as err:
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{uri}: not an MSD track ({err})")
                continue
            split, lp = captions.get(track_id, (None, {}))
            if self.split not in (None, split):
                continue
            digital_id = track.get("track_7digitalid")
            if not isinstance(digital_id, int) or digital_id < 10:  # the preview path needs two digits
                detail = f"{uri}: no usable track_7digitalid ({digital_id!r}), so no preview"
                yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, detail)
                continue
            audio_uri = storage.join(self.previews_uri, preview_path(digital_id))
            try:
                num_bytes = storage.size(audio_uri)  # one stat: also tells a missing file
            except FileNotFoundError:
                yield Reject(key, self.name, RejectReason.MISSING_FILE, f"{uri}: preview {audio_uri} not found")
                continue
            if num_bytes == 0:
                yield Reject(key, self.name, RejectReason.ZERO_BYTE, f"{uri}: preview {audio_uri} is empty")
                continue
            meta = {**track, "track_id": track.get("track_id") or track_id}
            meta.update({k: lp[k] for k in LP_META if k in lp})
            if lp.get("path"):
                meta["lp_path"] = lp["path"]
            yield AudioRecord(
                key=key,
                source=self.name,
                audio_uri=audio_uri,
                caption=lp.get("caption_writing"),
                labels=list(lp.get("tag") or []),
                split=split,
                meta=meta,
            )
