"""Generic audio manifests: HF AudioFolder, NeMo JSONL, Kaldi data directories and fairseq TSV.

Layouts accepted (``INPUT_URI`` is a directory or one manifest file; paths inside a manifest are
resolved relative to the manifest's own directory unless absolute):

* **AudioFolder** (HF ``datasets``): ``metadata.csv`` or ``metadata.jsonl`` with a ``file_name``
  column, at the root and/or in split directories (``train/metadata.csv``, ``test/metadata.jsonl``).
* **NeMo JSONL**: ``*.jsonl`` / ``*.json`` lines with ``audio_filepath`` (required) and optional
  ``offset``, ``duration``, ``text``.
* **Kaldi** data directory: ``wav.scp`` (``<rec> <path>``) plus optional ``text``, ``segments``
  (``<utt> <rec> <start> <end>``, ``end`` -1 = to the end) and ``utt2spk``. Piped ``wav.scp`` entries
  (``cmd |``) are rejected as ``malformed_metadata``.
* **fairseq TSV** (wav2vec style): first line is the audio root directory (relative roots are
  resolved from the TSV's directory), then ``<relpath>\\t<num_samples>``; an optional ``<stem>.wrd``
  beside it gives one transcript per line.

BOMs, CRLF line endings, extra columns and non-ASCII text are accepted. Audio must end in
wav, flac, mp3, opus, ogg or m4a.

``split``: keep only records of that split (split names: train, test, validation, valid, dev, eval).

Options: ``form`` (``audiofolder|nemo|kaldi|tsv``) picks the form when a directory holds several
(otherwise that is a :class:`SourceError`); ``name`` is the key namespace (default: the input
directory's name, or the manifest file's parent directory name).

Partitions: one per manifest file (AudioFolder, TSV) or per Kaldi directory (its ``wav.scp``), as
paths relative to the input. A NeMo manifest is split by byte range, one partition per
:data:`NEMO_SHARD_BYTES` (or ``shards=N`` ranges): ``<path>#<i>-of-<n>`` holds the lines that *start*
in the ``i``-th of ``n`` equal byte ranges, so a 10M-line manifest is thousands of small partitions,
each read with one seek, and no partition (nor the driver collecting it) holds the whole file. A
manifest of one range keeps the plain path as its id.

Record mapping (key ``manifest/<name>/<id>``):

* AudioFolder: id = ``[<split dir>/]<file_name>`` without extension; ``text`` ← ``text|transcription|transcript|
  sentence``, ``caption`` ← ``caption``, ``speaker`` ← ``speaker|speaker_id``, ``language`` ←
  ``language|lang|locale``, ``labels`` ← ``label|labels`` (list or ``,``-separated), ``duration_s`` ←
  ``duration``, ``sample_rate`` ← ``sample_rate``; ``split`` = the split directory (or the first
  path component of ``file_name`` when it is a split name); every other column → ``meta``.
* NeMo (in a byte range, rows are named by byte offset, not line number): id = ``audio_filepath``
  normalised (leading ``/`` and ``..`` dropped, no extension) plus
  ``_<offset ms>`` when the line has an ``offset``; ``offset_s``, ``duration_s``, ``text``, ``speaker``
  (``speaker|speaker_id``), ``language`` (``language|lang|locale``) mapped, the rest → ``meta``;
  ``split`` = the manifest's stem when it is a split name (``train.jsonl``).
* Kaldi: id = utterance id (recording id without ``segments``); ``text`` ← ``text``, ``speaker`` ←
  ``utt2spk``, ``offset_s``/``duration_s`` ← ``segments``; ``meta`` = ``{"recording": <rec>}``;
  ``split`` = the data directory's name when it is a split name (``data/train/wav.scp``).
* TSV: id = relative path without extension; ``text`` ← ``.wrd`` line; ``meta`` =
  ``{"num_samples": n}`` (no duration: the sample rate is not in the manifest);
  ``split`` = the TSV stem when it is a split name (``train``, ``valid``...).

Missing or zero-byte audio → ``missing_file`` / ``zero_byte``; unparsable rows → ``malformed_metadata``
with the manifest path and line number in ``detail``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
from collections.abc import Iterator
from typing import Any, ClassVar

from uniaudio.core import storage
from uniaudio.core.keys import make_key
from uniaudio.pipelines.records import AudioRecord, Reject, RejectReason
from uniaudio.pipelines.sources.base import Source, SourceError
from uniaudio.pipelines.sources.common import (
    audio_file_reject,
    parse_shard,
    read_text,
    relative_to,
    shard_count,
    shard_partitions,
)

__all__ = ["ManifestSource"]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".opus", ".ogg", ".m4a")
SPLIT_NAMES = frozenset({"train", "test", "validation", "valid", "dev", "eval"})
FORMS = ("audiofolder", "nemo", "kaldi", "tsv")
#: Bytes of NeMo JSONL per partition (~1,300 lines of ~200 bytes): the driver holds a few partitions at once.
NEMO_SHARD_BYTES = 256 << 10

_TEXT_KEYS = ("text", "transcription", "transcript", "sentence")
_SPEAKER_KEYS = ("speaker", "speaker_id")
_LANGUAGE_KEYS = ("language", "lang", "locale")
_LABEL_KEYS = ("labels", "label")


# ------------------------------------------------------------------ helpers shared by speech sources






# ------------------------------------------------------------------------------------------ source


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


def _labels(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).split(",")


def _path_id(path: str) -> str:
    """An id from a relative audio path: normalised, leading ``/`` and ``../`` dropped, no extension."""
    parts = [p for p in posixpath.normpath(path.replace("\\", "/")).split("/") if p not in ("", "..", ".")]
    return posixpath.splitext("/".join(parts))[0]


def _first_line(uri: str) -> str:
    with storage.open_uri(uri, "rb") as f:
        return f.readline().decode("utf-8-sig").strip()


class ManifestSource(Source):
    """Generic manifests (AudioFolder, NeMo JSONL, Kaldi dir, fairseq TSV); see the module docstring.

    Options: ``form`` (force one form), ``name`` (key namespace).
    """

    name: ClassVar[str] = "manifest"
    layouts: ClassVar[tuple[str, ...]] = (
        "AudioFolder: [<split>/]metadata.csv|metadata.jsonl with file_name",
        "NeMo: *.jsonl with audio_filepath[, offset, duration, text]",
        "Kaldi: wav.scp [+ text, segments, utt2spk]",
        "fairseq: <split>.tsv (root line, then relpath<TAB>num_samples) [+ <split>.wrd]",
    )
    accepted_options = ("form", "name", "shards")

    def __init__(self, input_uri: str, split: str | None = None, **options: Any) -> None:
        super().__init__(input_uri, split, **options)
        self.form: str | None = options.get("form")
        if self.form is not None and self.form not in FORMS:
            raise SourceError(f"manifest form must be one of {', '.join(FORMS)}, got {self.form!r}")
        uri = self.input_uri
        is_file = uri.rsplit("/", 1)[-1].endswith((".csv", ".jsonl", ".json", ".tsv", ".scp"))
        self.root = uri.rsplit("/", 1)[0] if is_file else uri
        self.single_file = uri.rsplit("/", 1)[-1] if is_file else None
        self.ns: str = options.get("name") or self.root.rstrip("/").rsplit("/", 1)[-1]
        self._forms: dict[str, str] | None = None

    # -- discovery

    def _classify(self, uri: str) -> str | None:
        base = uri.rsplit("/", 1)[-1]
        if base in ("metadata.csv", "metadata.jsonl"):
            return "audiofolder"
        if base == "wav.scp":
            return "kaldi"
        if base.endswith(".tsv"):
            first = _first_line(uri)
            return "tsv" if first and "\t" not in first else None
        if base.endswith((".jsonl", ".json")):
            try:
                return "nemo" if "audio_filepath" in json.loads(_first_line(uri)) else None
            except (json.JSONDecodeError, TypeError):
                return None
        return None

    def _discover(self) -> dict[str, str]:
        """partition (relative path) → form."""
        if self._forms is not None:
            return self._forms
        if self.single_file is not None:
            candidates = [storage.join(self.root, self.single_file)]
        else:
            candidates = [
                *storage.glob(self.root, "*"),
                *storage.glob(self.root, "*/metadata.*"),
                *storage.glob(self.root, "*/wav.scp"),
            ]
        found: dict[str, str] = {}
        for uri in candidates:
            form = self._classify(uri)
            if form is not None and (self.form is None or form == self.form):
                found[relative_to(self.root, uri)] = form
        if not found:
            raise SourceError(
                f"no manifest found at {self.input_uri}: expected metadata.csv|metadata.jsonl "
                "(AudioFolder), a NeMo .jsonl with audio_filepath, a Kaldi wav.scp or a fairseq .tsv"
            )
        forms = sorted(set(found.values()))
        if len(forms) > 1:
            raise SourceError(
                f"{self.input_uri} holds several manifest forms ({', '.join(forms)}); pass form=<one of them>"
            )
        self._forms = found
        return found

    def partitions(self) -> list[str]:
        parts = self._discover()
        if self.split is not None:
            parts = {p: f for p, f in parts.items() if self._partition_split(p, f) in (self.split, None)}
        out: list[str] = []
        for path, form in sorted(parts.items()):
            if form == "nemo":
                count = shard_count(self.options.get("shards"), storage.join(self.root, path), NEMO_SHARD_BYTES)
                out += shard_partitions(path, count)
            else:
                out.append(path)
        return out

    def _partition_split(self, partition: str, form: str) -> str | None:
        """AudioFolder: the split directory; Kaldi: the data directory's name; NeMo/TSV: the file stem."""
        if form == "audiofolder":
            name = partition.split("/", 1)[0] if "/" in partition else None
        elif form == "kaldi":
            name = partition.split("/", 1)[0] if "/" in partition else self.root.rsplit("/", 1)[-1]
        else:
            name = posixpath.splitext(partition.rsplit("/", 1)[-1])[0]
        return name if name in SPLIT_NAMES else None

    def read_partition(self, partition: str) -> Iterator[AudioRecord | Reject]:
        path, index, count = parse_shard(partition)
        form = self._discover()[path]
        uri = storage.join(self.root, path)
        split = self._partition_split(path, form)
        if form == "nemo":
            items = self._read_nemo(uri, split, index, count)
        else:
            items = {"audiofolder": self._read_audiofolder, "kaldi": self._read_kaldi, "tsv": self._read_tsv}[form](
                uri, split)
        for item in items:
            if isinstance(item, Reject) or self.split is None or item.split == self.split:
                yield item

    # -- shared

    def _key(self, ident: str) -> str:
        return make_key(self.name, self.ns, ident)

    def _bad_row(self, uri: str, line: int | str, ident: str | None, why: str) -> Reject:
        """A ``malformed_metadata`` reject at ``line`` (a line number, or ``"byte <offset>"``)."""
        where = f"line {line}" if isinstance(line, int) else line
        key = self._key(ident or f"{uri.rsplit('/', 1)[-1]}-{where.replace(' ', '')}")
        return Reject(key, self.name, RejectReason.MALFORMED_METADATA, f"{uri} {where}: {why}")

    def _audio(self, manifest_uri: str, path: str) -> str:
        """``path`` resolved against the manifest's directory."""
        return _resolve(manifest_uri.rsplit("/", 1)[0], path)


    def _checked(self, record: AudioRecord, context: str) -> AudioRecord | Reject:
        if not record.audio_uri.lower().endswith(AUDIO_SUFFIXES):
            return Reject(record.key, self.name, RejectReason.MALFORMED_METADATA,
                          f"{context}: {record.audio_uri} is not a supported audio file")
        return audio_file_reject(self.name, record.key, record.audio_uri, context) or record

    # -- AudioFolder

    def _read_audiofolder(self, uri: str, split: str | None) -> Iterator[AudioRecord | Reject]:
        text = read_text(uri)
        if uri.endswith(".csv"):
            reader = csv.DictReader(io.StringIO(text, newline=""))
            rows: Iterator[tuple[int, Any]] = ((reader.line_num, row) for row in reader)
        else:
            rows = _json_lines(text)
        for line, row in rows:
            if isinstance(row, Exception) or not isinstance(row, dict):
                yield self._bad_row(uri, line, None, f"not a JSON object ({row})")
                continue
            file_name = str(row.get("file_name") or "").strip()
            if not file_name:
                yield self._bad_row(uri, line, None, "no file_name")
                continue
            head = file_name.split("/", 1)[0] if "/" in file_name else None
            ident = _path_id(file_name if split is None else f"{split}/{file_name}")
            try:
                record = AudioRecord(
                    key=self._key(ident),
                    source=self.name,
                    audio_uri=self._audio(uri, file_name),
                    duration_s=_float(row.get("duration")),
                    sample_rate=int(row["sample_rate"]) if row.get("sample_rate") not in (None, "") else None,
                    text=_first(row, _TEXT_KEYS),
                    caption=row.get("caption") or None,
                    labels=_labels(_first(row, _LABEL_KEYS)),
                    speaker=_first(row, _SPEAKER_KEYS),
                    language=_first(row, _LANGUAGE_KEYS),
                    split=split or (head if head in SPLIT_NAMES else None),
                    meta=_rest(row, ("file_name", "duration", "sample_rate", "caption",
                                     *_TEXT_KEYS, *_LABEL_KEYS, *_SPEAKER_KEYS, *_LANGUAGE_KEYS)),
                )
            except ValueError as exc:
                yield self._bad_row(uri, line, ident, str(exc))
                continue
            yield self._checked(record, f"{uri} line {line}")

    # -- NeMo

    def _read_nemo(self, uri: str, split: str | None, index: int = 0, count: int = 1) -> Iterator[AudioRecord | Reject]:
        rows = _json_lines(read_text(uri)) if count == 1 else _json_range(uri, index, count)
        for line, row in rows:
            if isinstance(row, Exception) or not isinstance(row, dict) or not row.get("audio_filepath"):
                yield self._bad_row(uri, line, None, "not a JSON object with audio_filepath")
                continue
            path = str(row["audio_filepath"])
            ident = _path_id(path)
            try:
                offset = _float(row.get("offset"))
                if offset is not None:
                    ident = f"{ident}_{round(offset * 1000):d}"
                record = AudioRecord(
                    key=self._key(ident),
                    source=self.name,
                    audio_uri=self._audio(uri, path),
                    offset_s=offset or 0.0,
                    duration_s=_float(row.get("duration")),
                    text=row.get("text"),
                    speaker=_first(row, _SPEAKER_KEYS),
                    language=_first(row, _LANGUAGE_KEYS),
                    split=split,
                    meta=_rest(row, ("audio_filepath", "offset", "duration", "text",
                                     *_SPEAKER_KEYS, *_LANGUAGE_KEYS)),
                )
            except (TypeError, ValueError) as exc:
                yield self._bad_row(uri, line, ident, str(exc))
                continue
            yield self._checked(record, f"{uri} line {line}" if isinstance(line, int) else f"{uri} {line}")

    # -- Kaldi

    def _kaldi_table(self, uri: str) -> dict[str, str]:
        if not storage.exists(uri):
            return {}
        table: dict[str, str] = {}
        for line in read_text(uri).splitlines():
            fields = line.strip().split(None, 1)
            if fields:
                table[fields[0]] = fields[1].strip() if len(fields) > 1 else ""
        return table

    def _read_kaldi(self, uri: str, split: str | None) -> Iterator[AudioRecord | Reject]:
        data_dir = uri.rsplit("/", 1)[0]
        wav_lines = read_text(uri).splitlines()
        recordings: dict[str, tuple[int, str]] = {}
        for line, raw in enumerate(wav_lines, start=1):
            fields = raw.strip().split(None, 1)
            if not fields:
                continue
            rec, path = fields[0], (fields[1].strip() if len(fields) > 1 else "")
            if not path or path.endswith("|"):
                yield self._bad_row(uri, line, rec, "needs '<recording> <file path>' (piped commands unsupported)")
                continue
            recordings[rec] = (line, path)
        texts = self._kaldi_table(storage.join(data_dir, "text"))
        speakers = self._kaldi_table(storage.join(data_dir, "utt2spk"))
        segments_uri = storage.join(data_dir, "segments")
        if storage.exists(segments_uri):
            utterances: list[tuple[str, str, float, float | None, str]] = []
            for line, raw in enumerate(read_text(segments_uri).splitlines(), start=1):
                fields = raw.split()
                if not fields:
                    continue
                try:
                    utt, rec, start, end = fields[0], fields[1], float(fields[2]), float(fields[3])
                except (IndexError, ValueError):
                    yield self._bad_row(segments_uri, line, fields[0], "needs '<utt> <rec> <start> <end>'")
                    continue
                utterances.append((utt, rec, start, None if end < 0 else end - start, f"{segments_uri} line {line}"))
        else:
            utterances = [(rec, rec, 0.0, None, f"{uri} line {line}") for rec, (line, _) in recordings.items()]
        for utt, rec, start, duration, context in utterances:
            if rec not in recordings:
                yield Reject(self._key(utt), self.name, RejectReason.MALFORMED_METADATA,
                             f"{context}: recording {rec!r} is not in {uri}")
                continue
            record = AudioRecord(
                key=self._key(utt),
                source=self.name,
                audio_uri=self._audio(uri, recordings[rec][1]),
                offset_s=start,
                duration_s=duration,
                text=texts.get(utt),
                speaker=speakers.get(utt),
                split=split,
                meta={"recording": rec},
            )
            yield self._checked(record, context)

    # -- fairseq TSV

    def _read_tsv(self, uri: str, split: str | None) -> Iterator[AudioRecord | Reject]:
        lines = read_text(uri).splitlines()
        root = lines[0].strip()
        audio_root = self._audio(uri, root)
        wrd_uri = uri[: -len(".tsv")] + ".wrd"
        words = read_text(wrd_uri).splitlines() if storage.exists(wrd_uri) else None
        stem = posixpath.splitext(uri.rsplit("/", 1)[-1])[0]
        for index, raw in enumerate(lines[1:]):
            line = index + 2
            if not raw.strip():
                continue
            fields = raw.split("\t")
            relpath = fields[0].strip()
            try:
                num_samples = int(fields[1])
            except (IndexError, ValueError):
                yield self._bad_row(uri, line, _path_id(relpath) if relpath else None,
                                    "needs '<relpath>\\t<num_samples>'")
                continue
            record = AudioRecord(
                key=self._key(_path_id(relpath)),
                source=self.name,
                audio_uri=_resolve(audio_root, relpath),
                text=words[index] if words is not None and index < len(words) else None,
                split=split if split is not None else (stem if stem in SPLIT_NAMES else None),
                meta={"num_samples": num_samples},
            )
            yield self._checked(record, f"{uri} line {line}")


def _resolve(base: str, path: str) -> str:
    """``path`` against directory ``base`` unless absolute; ``..`` collapsed, also in S3 keys."""
    if path.startswith("/") or storage.is_remote(path):
        return path
    if not storage.is_remote(base):
        return os.path.normpath(os.path.join(base, path))
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, path))}"


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed JSON)`` per non-empty line; a line that does not parse gives the exception."""
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, exc


def _line_range(uri: str, index: int, count: int) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` of the lines that start in the ``index``-th of ``count`` equal byte ranges."""
    size = storage.size(uri)
    start, end = size * index // count, size * (index + 1) // count
    with storage.open_uri(uri, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()  # the line under way started in the previous range
        pos = f.tell()
        while pos < end:
            line = f.readline()
            if not line:
                break
            yield pos, line
            pos += len(line)


def _json_range(uri: str, index: int, count: int) -> Iterator[tuple[str, Any]]:
    """Like :func:`_json_lines` over one byte range of ``uri``, lines named by their byte offset."""
    for offset, raw in _line_range(uri, index, count):
        text = raw.decode("utf-8-sig" if offset == 0 else "utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            yield f"byte {offset}", json.loads(text)
        except json.JSONDecodeError as exc:
            yield f"byte {offset}", exc


def _rest(row: dict[str, Any], used: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in used and k is not None}
