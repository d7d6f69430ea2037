"""WavCaps: per-source caption JSON files, blacklists, and the FLAC audio (extracted or zipped).

Layout accepted (``input_uri`` is the directory holding ``json_files/``, e.g. the cvssp/WavCaps repo):

* ``json_files/<Src>/*.json`` (``AudioSet_SL/as_final.json``, ``BBC_Sound_Effects/bbc_final.json``,
  ``FreeSound/fsd_final.json``, ``SoundBible/sb_final.json``), each
  ``{"num_captions_per_audio": 1, "data": [{id, caption, duration, audio: "wav_path", ...}]}``. The files
  are streamed with ijson (FreeSound's is 147 MB). One partition per JSON file.
* ``json_files/blacklist/*.json``: ``{"AudioSet": [ids], "FreeSound": [ids], ...}``; a list applies to the
  ``<Src>`` folders named by it (``AudioSet`` → ``AudioSet_SL``). Option ``blacklists`` (list of file
  names or stems, or one comma-separated string) restricts which files apply; default all.
* Audio under ``audio_dir`` (option; default ``input_uri``), searched recursively for
  ``<Src>_flac/<id>.flac`` — the unzipped trees keep the long
  ``mnt/fast/nobackup/scratch4weeks/xm00178/WavCaps/data/waveforms/<Src>_flac/`` prefix — or inside single
  ``*.zip`` archives (member = the path inside the zip). Split archives (``X.zip`` + ``X.z01``…) cannot be
  read in place: they are skipped with a warning (repair with ``zip -F X.zip --out Y.zip``); extracted files
  are preferred over zip members.

Traps handled: ids end in ``.wav`` while the files are ``.flac``; ``audio`` is the literal ``"wav_path"``
and is ignored; AudioSet_SL ids are ``Y<ytid>.wav`` with no start time (blacklist entries are matched with
or without the ``Y``).

Record mapping: ``key`` ``wavcaps/<Src>/<id without extension>``; ``caption`` verbatim (stripped);
``duration_s`` the JSON ``duration``; ``sample_rate`` ``None`` (unverified, the audio stage probes it);
``split`` ``None``; ``meta``: ``wavcaps_source``, ``id`` and every other item field except
``caption``/``duration``/``audio`` (SoundBible's ``title``, ``description``, ``author``, ``href``,
``download_link``).

Rejects: ``blacklisted``, ``malformed_metadata`` (item without id or caption, bad duration),
``missing_file`` (no FLAC for the id), ``zero_byte``.
"""

from __future__ import annotations

import logging
import posixpath
import zipfile
from collections.abc import Iterator
from typing import Any

import ijson

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError

__all__ = ["WavCapsSource"]

log = logging.getLogger(__name__)

BLACKLIST_DIR = "blacklist"
SKIPPED_FIELDS = ("id", "caption", "duration", "audio")


def _stem(item_id: str) -> str:
    for ext in (".wav", ".flac"):
        if item_id.lower().endswith(ext):
            return item_id[: -len(ext)]
    return item_id


def _canonical(src: str, stem: str) -> str:
    """Blacklist comparison form: AudioSet ids without the PANNs ``Y`` prefix (YTIDs are 11 chars)."""
    if src.startswith("AudioSet") and len(stem) == 12 and stem.startswith("Y"):
        return stem[1:]
    return stem


def _applies(blacklist_key: str, src: str) -> bool:
    return src == blacklist_key or src.startswith(f"{blacklist_key}_")


class WavCapsSource(Source):
    name = "wavcaps"
    layouts = (
        "json_files/<Src>/*.json + json_files/blacklist/*.json + <Src>_flac/<id>.flac trees or single *.zip",
    )
    accepted_options = ("audio_dir", "blacklists")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.json_dir = storage.join(self.input_uri, "json_files")
        self.audio_dir = str(options.get("audio_dir") or self.input_uri)
        wanted = options.get("blacklists")
        if isinstance(wanted, str):  # CLI form: comma-separated names
            wanted = [n for n in wanted.split(",") if n.strip()]
        self.blacklist_names = None if wanted is None else {_stem_json(n.strip()) for n in wanted}
        self._audio: dict[tuple[str, str], tuple[str, str | None, int | None]] | None = None
        self._blacklist: dict[str, set[str]] | None = None

    def partitions(self) -> list[str]:
        files = storage.glob(self.json_dir, "*/*.json")
        parts = [
            f[len(self.input_uri) :].lstrip("/")
            for f in files
            if posixpath.basename(posixpath.dirname(f)) != BLACKLIST_DIR
        ]
        if not parts:
            raise SourceError(f"{self.input_uri}: no WavCaps metadata (expected json_files/<Src>/*.json)")
        return sorted(parts)

    # -- blacklists -------------------------------------------------------------------------------
    def _blacklisted(self, src: str) -> set[str]:
        if self._blacklist is None:
            self._blacklist = {}
            for uri in storage.glob(storage.join(self.json_dir, BLACKLIST_DIR), "*.json"):
                if self.blacklist_names is not None and _stem_json(uri) not in self.blacklist_names:
                    continue
                with storage.open_uri(uri) as f:
                    for key, ids in ijson.kvitems(f, ""):
                        self._blacklist.setdefault(key, set()).update(str(i) for i in ids)
        out: set[str] = set()
        for key, ids in self._blacklist.items():
            if _applies(key, src):
                out.update(_canonical(src, _stem(i)) for i in ids)
        return out

    # -- audio ------------------------------------------------------------------------------------
    def _audio_index(self) -> dict[tuple[str, str], tuple[str, str | None, int | None]]:
        """``(Src, stem) → (uri, zip member, member size)`` for every ``<Src>_flac/<stem>.flac``.

        Member and size are ``None`` for extracted files (their size is checked per record).
        """
        if self._audio is not None:
            return self._audio
        index: dict[tuple[str, str], tuple[str, str | None, int | None]] = {}
        zips: list[str] = []
        for uri in storage.glob(self.audio_dir, "**/*"):
            src_stem = _flac_id(uri)
            if src_stem:
                index.setdefault(src_stem, (uri, None, None))
            elif uri.endswith(".zip"):
                zips.append(uri)
        for uri in zips:
            if storage.exists(uri[: -len(".zip")] + ".z01"):
                log.warning("%s is a split archive; skipped (repair with zip -F and unzip it)", uri)
                continue
            with storage.open_uri(uri) as f, zipfile.ZipFile(f) as zf:
                for info in zf.infolist():
                    src_stem = _flac_id(info.filename)
                    if src_stem:
                        index.setdefault(src_stem, (uri, info.filename, info.file_size))
        self._audio = index
        return index

    # -- records ----------------------------------------------------------------------------------
    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        uri = storage.join(self.input_uri, partition)
        src = posixpath.basename(posixpath.dirname(partition))
        blacklist = self._blacklisted(src)
        audio = self._audio_index()
        with storage.open_uri(uri) as f:
            for n, item in enumerate(ijson.items(f, "data.item", use_float=True)):
                item_id = "" if item.get("id") is None else str(item["id"]).strip()
                stem = _stem(item_id)
                key = make_key(self.name, src, stem or f"item{n}")
                where = f"{uri} item {n}"
                caption = str(item.get("caption") or "").strip()
                if not stem or not caption:
                    yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{where}: no id or caption")
                    continue
                try:
                    duration = None if item.get("duration") is None else float(item["duration"])
                except (TypeError, ValueError):
                    detail = f"{where}: bad duration {item.get('duration')!r}"
                    yield Reject(key, self.name, RejectReason.MALFORMED_METADATA, detail)
                    continue
                if _canonical(src, stem) in blacklist:
                    yield Reject(key, self.name, RejectReason.BLACKLISTED, f"{where}: {item_id} is blacklisted")
                    continue
                found = audio.get((src, stem))
                if found is None:
                    detail = f"{where}: no {src}_flac/{stem}.flac under {self.audio_dir}"
                    yield Reject(key, self.name, RejectReason.MISSING_FILE, detail)
                    continue
                audio_uri, member, member_size = found
                if (storage.size(audio_uri) if member is None else member_size) == 0:
                    detail = f"{where}: {audio_uri}{' member ' + member if member else ''} is empty"
                    yield Reject(key, self.name, RejectReason.ZERO_BYTE, detail)
                    continue
                meta = {k: v for k, v in item.items() if k not in SKIPPED_FIELDS}
                yield AudioRecord(
                    key=key,
                    source=self.name,
                    audio_uri=audio_uri,
                    member=member,
                    duration_s=duration,
                    caption=caption,
                    meta={"wavcaps_source": src, "id": item_id, **meta},
                )


def _flac_id(path: str) -> tuple[str, str] | None:
    """``(Src, stem)`` for a path ending in ``<Src>_flac/<stem>.flac``, else ``None``."""
    folder, name = posixpath.split(path)
    folder = posixpath.basename(folder)
    if not name.endswith(".flac") or not folder.endswith("_flac"):
        return None
    return folder[: -len("_flac")], name[: -len(".flac")]


def _stem_json(name: str) -> str:
    base = posixpath.basename(name)
    return base[: -len(".json")] if base.endswith(".json") else base
