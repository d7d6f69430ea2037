"""Reading Hugging Face-style tables (parquet / arrow files) row by row without decoding audio.

Shared by the ``hf`` source and by every named source whose release is an HF dataset (MLS parquet,
AudioSet parquet, CapSpeech, LP-MusicCaps-MSD), so there is one parquet reader in the project.

Audio columns in HF releases hold ``{"bytes": ..., "path": ...}`` structs (or plain binary). Rows are
yielded with the audio column replaced by a light :class:`AudioRef` (no bytes), and the record's
``member`` is ``"<row>:<column>"`` (see :mod:`uniaudio.pipelines.records`), which the audio stage
resolves by reading that one row's bytes again.

:func:`iter_table_rows` loads one file's table (arrow files are memory-mapped, not copied);
:func:`stream_table_rows` / :func:`iter_table_batches` read batch by batch and only the columns asked
for, so memory stays bounded whatever the file size (``--streaming``).

:func:`resolve_tables` finds the files of a Hugging Face dataset given as a file, a ``save_to_disk``
folder, a ``datasets`` cache folder, a folder of parquet/arrow files (hub snapshot or checkout), or a
dataset name looked up in the local caches, all without network access.
"""

from __future__ import annotations

import glob as globlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from uniaudio.core import storage
from uniaudio.pipelines.sources.base import SourceError

__all__ = [
    "AudioRef",
    "HFLocation",
    "TableSet",
    "datasets_cache_dir",
    "hub_cache_dir",
    "is_dataset_name",
    "iter_table_batches",
    "iter_table_rows",
    "read_audio_cell",
    "resolve_tables",
    "stream_table_rows",
    "table_columns",
    "table_files",
]

TABLE_SUFFIXES = (".parquet", ".arrow")
_ARROW_FILE_MAGIC = b"ARROW1"


@dataclass(frozen=True)
class AudioRef:
    """Where an audio cell's bytes are, without the bytes: ``path`` is the release's own file name."""

    path: str | None
    has_bytes: bool
    num_bytes: int


def table_files(uri: str) -> list[str]:
    """Parquet/arrow files at ``uri`` (a file, or a directory searched recursively), sorted."""
    if uri.endswith(TABLE_SUFFIXES):
        return [uri] if storage.exists(uri) else []
    files: list[str] = []
    for suffix in TABLE_SUFFIXES:
        files += storage.glob(uri, f"**/*{suffix}")
    return sorted(set(files))


def _arrow_source(uri: str) -> pa.NativeFile:
    """A local arrow file memory-mapped (nothing is copied until a batch is used), a remote one streamed."""
    if storage.is_remote(uri):
        return pa.PythonFile(storage.open_uri(uri), mode="r")
    return pa.memory_map(storage.strip_scheme(uri), "r")


def _arrow_reader(source: pa.NativeFile) -> pa.ipc.RecordBatchStreamReader | pa.ipc.RecordBatchFileReader:
    """``datasets`` writes the IPC *stream* format; plain ``pyarrow`` users often write the *file* format."""
    if source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC:
        source.seek(0)
        return pa.ipc.open_file(source)
    source.seek(0)
    return pa.ipc.open_stream(source)


def _open_table(uri: str) -> pa.Table | pq.ParquetFile:
    if uri.endswith(".arrow"):
        reader = _arrow_reader(_arrow_source(uri))
        return reader.read_all()
    return pq.ParquetFile(storage.open_uri(uri))


def table_columns(uri: str) -> list[str]:
    table = _open_table(uri)
    return list(table.schema.names) if isinstance(table, pa.Table) else list(table.schema_arrow.names)


def _audio_ref(value: Any) -> AudioRef:
    if isinstance(value, dict):
        data = value.get("bytes")
        return AudioRef(path=value.get("path"), has_bytes=bool(data), num_bytes=len(data or b""))
    if isinstance(value, bytes | bytearray):
        return AudioRef(path=None, has_bytes=bool(value), num_bytes=len(value))
    if isinstance(value, str):
        return AudioRef(path=value, has_bytes=False, num_bytes=0)
    return AudioRef(path=None, has_bytes=False, num_bytes=0)


def iter_table_rows(
    uri: str, audio_columns: tuple[str, ...] = (), batch_size: int = 256
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row_index, row)`` for every row of one parquet/arrow file; audio cells become :class:`AudioRef`."""
    table = _open_table(uri)
    batches = table.to_batches(batch_size) if isinstance(table, pa.Table) else table.iter_batches(batch_size)
    row_index = 0
    for batch in batches:
        for row in batch.to_pylist():
            for column in audio_columns:
                if column in row:
                    row[column] = _audio_ref(row[column])
            yield row_index, row
            row_index += 1


def read_audio_cell(uri: str, row: int, column: str) -> bytes:
    """The encoded audio bytes at ``row``/``column`` of one parquet/arrow file (one row group read)."""
    table = _open_table(uri)
    if isinstance(table, pa.Table):
        value = table.column(column)[row].as_py()
    else:
        meta = table.metadata
        start = 0
        for group in range(meta.num_row_groups):
            n = meta.row_group(group).num_rows
            if row < start + n:
                value = table.read_row_group(group, columns=[column]).column(column)[row - start].as_py()
                break
            start += n
        else:
            raise IndexError(f"{uri}: row {row} out of range ({start} rows)")
    if isinstance(value, dict):
        value = value.get("bytes")
    if not value:
        raise ValueError(f"{uri}: row {row} column {column!r} holds no audio bytes")
    return bytes(value)


# --------------------------------------------------------------------------- streaming reads


def iter_table_batches(
    uri: str, columns: Sequence[str] | None = None, batch_size: int = 256
) -> Iterator[pa.RecordBatch]:
    """Record batches of one parquet/arrow file, read incrementally: never the whole table.

    Parquet is read one batch at a time (``ParquetFile.iter_batches``); a local arrow file is
    memory-mapped and its IPC batches sliced to ``batch_size`` rows, a remote one streamed. Only
    ``columns`` are read when given (the caller checks that they exist, see :func:`table_columns`).
    """
    if not uri.endswith(".arrow"):
        with storage.open_uri(uri) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size, columns=columns)
        return
    with _arrow_source(uri) as source:
        reader = _arrow_reader(source)
        if isinstance(reader, pa.ipc.RecordBatchFileReader):
            batches: Iterable[pa.RecordBatch] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = reader
        for batch in batches:
            if columns is not None:
                batch = batch.select(list(columns))
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)


def stream_table_rows(
    uri: str, audio_columns: tuple[str, ...] = (), columns: Sequence[str] | None = None, batch_size: int = 256
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like :func:`iter_table_rows`, but through :func:`iter_table_batches`: bounded memory, only ``columns``."""
    row_index = 0
    for batch in iter_table_batches(uri, columns, batch_size):
        for row in batch.to_pylist():
            for column in audio_columns:
                if column in row:
                    row[column] = _audio_ref(row[column])
            yield row_index, row
            row_index += 1


# --------------------------------------------------------------------------- dataset layouts


@dataclass(frozen=True)
class TableSet:
    """The parquet/arrow files of one Hugging Face dataset input, with the split of each file.

    ``files`` maps a path relative to ``root`` (the stable partition id) to its split (``None`` when the
    layout does not say); ``uri(relative)`` is the file's URI. ``name`` identifies the dataset in keys
    (the repo id, or the folder/file stem); ``layout`` says which layout was recognised (``file``,
    ``save_to_disk``, ``datasets_cache``, ``folder``).
    """

    name: str
    root: str
    layout: str
    files: dict[str, str | None]

    def uri(self, relative: str) -> str:
        return self.root if relative == "" else storage.join(self.root, relative)

    @property
    def splits(self) -> list[str]:
        return sorted({s for s in self.files.values() if s is not None})


@dataclass(frozen=True)
class HFLocation:
    """Which dataset to resolve: a repo id or a local/remote path, plus the HF selectors."""

    input_uri: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    cache_dir: str | None = None  # overrides $HF_DATASETS_CACHE (arrow cache) for dataset names
    hub_cache_dir: str | None = None  # overrides $HF_HUB_CACHE (hub snapshots) for dataset names


_SHARDED_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d{5}-of-\d{5}\.(parquet|arrow)$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_tables(location: HFLocation) -> TableSet:
    """Find the table files of a Hugging Face dataset without network access.

    ``input_uri`` is tried, in order, as:

    1. a ``.parquet``/``.arrow`` file;
    2. a ``save_to_disk`` directory: ``dataset_dict.json`` + one folder per split, or ``state.json``
       listing ``data-0000N-of-0000M.arrow`` files;
    3. a ``datasets`` cache directory (``dataset_info.json`` + ``<name>-<split>[-0000N-of-0000M].arrow``);
    4. any folder of parquet/arrow files, e.g. a hub repo checkout (see :func:`_folder_tables`);
    5. a dataset name (``org/name``): the ``datasets`` arrow cache
       ``$HF_DATASETS_CACHE/<org>___<name>/<config>/<version>/<hash>/`` (newest hash; skipped when a
       ``revision`` is asked for), then the hub snapshot cache
       ``$HF_HUB_CACHE/datasets--<org>--<name>/snapshots/<revision or refs/main>/`` read as a folder.

    ``split`` keeps only that split's files (a :class:`SourceError` lists the splits found otherwise).
    Raises :class:`SourceError` naming every path searched and how to fetch the dataset when nothing
    matches: uniaudio never downloads.
    """
    uri = location.input_uri
    if uri.endswith(TABLE_SUFFIXES) and storage.exists(uri):
        name = posixpath.basename(uri).rsplit(".", 1)[0]
        split = location.split or _split_from_path(posixpath.basename(uri))
        return TableSet(name=name, root=uri, layout="file", files={"": split})
    if _is_dir(uri):
        return _select_split(_directory_tables(uri, _dir_name(uri), location), location.split)
    if not is_dataset_name(uri):
        raise SourceError(f"{uri}: no such file or directory, and not a dataset name like 'org/name'")
    return _select_split(_named_tables(location), location.split)


def is_dataset_name(text: str) -> bool:
    """Whether ``text`` looks like a hub dataset id (``name`` or ``org/name``) rather than a path."""
    return bool(_REPO_ID.match(text))


def _is_dir(uri: str) -> bool:
    return storage.filesystem(uri).isdir(storage.strip_scheme(uri))


def _dir_name(uri: str) -> str:
    return posixpath.basename(storage.strip_scheme(uri).rstrip("/")) or "dataset"


def _read_json(uri: str) -> Any:
    return json.loads(storage.read_bytes(uri))


def _relative(root: str, uri: str) -> str:
    return posixpath.relpath(storage.strip_scheme(uri), storage.strip_scheme(root))


def _directory_tables(uri: str, name: str, location: HFLocation) -> TableSet:
    if storage.exists(storage.join(uri, "dataset_dict.json")):
        files: dict[str, str | None] = {}
        for split in _read_json(storage.join(uri, "dataset_dict.json"))["splits"]:
            for rel in _saved_dataset_files(storage.join(uri, split)):
                files[f"{split}/{rel}"] = split
        return TableSet(name=name, root=uri, layout="save_to_disk", files=files)
    if storage.exists(storage.join(uri, "state.json")):
        split = _read_json(storage.join(uri, "state.json")).get("_split")
        files = {rel: split for rel in _saved_dataset_files(uri)}
        return TableSet(name=name, root=uri, layout="save_to_disk", files=files)
    if storage.exists(storage.join(uri, "dataset_info.json")) and storage.glob(uri, "*.arrow"):
        return _cache_dir_tables(uri)
    return _folder_tables(uri, name, location.config)


def _saved_dataset_files(uri: str) -> list[str]:
    """Arrow files of one ``Dataset.save_to_disk`` folder, in ``state.json`` order."""
    state = _read_json(storage.join(uri, "state.json"))
    return [entry["filename"] for entry in state["_data_files"]]


def _cache_dir_tables(uri: str, name: str | None = None) -> TableSet:
    """One prepared config in the ``datasets`` cache: files named as ``datasets.naming`` names them."""
    from datasets.naming import filenames_for_dataset_split

    info = _read_json(storage.join(uri, "dataset_info.json"))
    files: dict[str, str | None] = {}
    for split, split_info in (info.get("splits") or {}).items():
        names = filenames_for_dataset_split(
            "", info.get("dataset_name") or info["builder_name"], split, "arrow", split_info.get("shard_lengths")
        )
        files.update({posixpath.basename(n): split for n in names})
    missing = [rel for rel in files if not storage.exists(storage.join(uri, rel))]
    if missing or not files:
        raise SourceError(f"{uri}: incomplete datasets cache entry (missing {missing or 'split info'})")
    name = name or info.get("dataset_name") or _dir_name(uri)
    return TableSet(name=name, root=uri, layout="datasets_cache", files=files)


def _folder_tables(uri: str, name: str, config: str | None) -> TableSet:
    """A folder of parquet/arrow files, e.g. a hub repo snapshot.

    If ``README.md`` declares ``configs`` (YAML front matter), the chosen config's ``data_files``
    patterns give the files and splits (``--config``, or the default/only config). Otherwise ``config``
    names a sub-folder (``german/train-00000-of-00001.parquet``), and each file's split is read from its
    path: ``<split>-0000N-of-0000M.<ext>``, else its parent folder (``<config>/<split>/0000.parquet``),
    else a file stem that is a split keyword (``train.parquet``), else unknown.
    """
    configs = _readme_configs(uri)
    if configs:
        return TableSet(name=name, root=uri, layout="folder", files=_config_files(uri, configs, config))
    base = uri
    if config is not None:
        base = storage.join(uri, config)
        if not _is_dir(base):
            subdirs = [posixpath.basename(p.rstrip("/")) for p in storage.list_dir(uri) if _is_dir(p)]
            raise SourceError(f"{uri}: no config folder {config!r}; folders: {', '.join(subdirs) or 'none'}")
    files = {_relative(uri, f): _split_from_path(_relative(base, f)) for f in table_files(base)}
    if not files:
        raise SourceError(f"{base}: no .parquet or .arrow files")
    return TableSet(name=name, root=uri, layout="folder", files=files)


def _split_from_path(relative: str) -> str | None:
    from datasets.data_files import SPLIT_KEYWORDS

    parts = relative.split("/")
    match = _SHARDED_NAME.match(parts[-1])
    if match:
        return match.group("split")
    if len(parts) > 1:
        return parts[-2]
    stem = parts[-1].rsplit(".", 1)[0]
    keywords = {k for words in SPLIT_KEYWORDS.values() for k in words}
    return stem if stem in keywords else None


def _readme_configs(uri: str) -> list[dict[str, Any]]:
    readme = storage.join(uri, "README.md")
    if not storage.exists(readme):
        return []
    text = storage.read_bytes(readme).decode("utf-8")
    if not text.startswith("---"):
        return []
    front = text.split("---", 2)[1]
    configs = (yaml.safe_load(front) or {}).get("configs") or []
    return [c for c in configs if isinstance(c, dict) and "config_name" in c]


def _config_files(uri: str, configs: list[dict[str, Any]], config: str | None) -> dict[str, str | None]:
    by_name = {c["config_name"]: c for c in configs}
    if config is None:
        defaults = [c for c in configs if c.get("default") or c["config_name"] == "default"]
        chosen = defaults[0] if defaults else (configs[0] if len(configs) == 1 else None)
        if chosen is None:
            raise SourceError(f"{uri}: several configs ({', '.join(by_name)}); pick one with --config")
    elif config in by_name:
        chosen = by_name[config]
    else:
        raise SourceError(f"{uri}: no config {config!r} in README.md; configs: {', '.join(by_name)}")
    base = storage.join(uri, chosen["data_dir"]) if chosen.get("data_dir") else uri
    data_files = chosen.get("data_files") or ["**"]
    if isinstance(data_files, str):
        data_files = [data_files]
    patterns: list[tuple[str, str]] = []
    for entry in data_files:
        if isinstance(entry, str):
            patterns.append(("train", entry))
        else:
            paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            patterns += [(entry["split"], p) for p in paths]
    files: dict[str, str | None] = {}
    for split, pattern in patterns:
        for f in storage.glob(base, pattern):
            if f.endswith(TABLE_SUFFIXES):
                files.setdefault(_relative(uri, f), split)
    if not files:
        raise SourceError(f"{uri}: config {chosen['config_name']!r} matches no .parquet or .arrow files")
    return files


def _select_split(tables: TableSet, split: str | None) -> TableSet:
    if split is None:
        return tables
    files = {rel: s for rel, s in tables.files.items() if s == split}
    if not files:
        found = ", ".join(tables.splits) or "none recognised"
        raise SourceError(f"{tables.root}: no files of split {split!r}; splits: {found}")
    return TableSet(name=tables.name, root=tables.root, layout=tables.layout, files=files)


def datasets_cache_dir() -> str:
    """The ``datasets`` arrow cache, as ``datasets`` computes it: ``$HF_DATASETS_CACHE``, else ``$HF_HOME/datasets``."""
    return os.environ.get("HF_DATASETS_CACHE") or os.path.join(_hf_home(), "datasets")


def hub_cache_dir() -> str:
    """The hub file cache, as ``huggingface_hub`` computes it: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    return os.environ.get("HF_HUB_CACHE") or os.path.join(_hf_home(), "hub")


def _hf_home() -> str:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.expanduser(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface"))


def _named_tables(location: HFLocation) -> TableSet:
    from datasets.naming import camelcase_to_snakecase

    repo_id = location.input_uri
    parts = repo_id.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    arrow_root = posixpath.join(location.cache_dir or datasets_cache_dir(), "___".join(parts))
    searched = []
    if location.revision is None:
        pattern = posixpath.join(arrow_root, location.config or "*", "*", "*")
        searched.append(f"datasets arrow cache: {pattern}")
        entries = [p for p in globlib.glob(pattern) if os.path.isfile(os.path.join(p, "dataset_info.json"))]
        configs = sorted({Path(p).parts[-3] for p in entries})
        if len(configs) > 1:
            raise SourceError(
                f"{repo_id}: several configs in the cache under {arrow_root} ({', '.join(configs)}); "
                "pick one with --config"
            )
        if entries:
            newest = max(entries, key=os.path.getmtime)
            return _cache_dir_tables(newest, repo_id)
    hub_repo = posixpath.join(location.hub_cache_dir or hub_cache_dir(), f"datasets--{repo_id.replace('/', '--')}")
    revision = location.revision or "main"
    ref = posixpath.join(hub_repo, "refs", revision)
    commit = Path(ref).read_text().strip() if os.path.isfile(ref) else revision
    snapshot = posixpath.join(hub_repo, "snapshots", commit)
    searched.append(f"hub snapshot cache: {hub_repo}/snapshots/<refs/{revision} or {revision}>")
    if os.path.isdir(snapshot):
        return _folder_tables(snapshot, repo_id, location.config)
    raise SourceError(_not_cached_message(location, searched))


def _not_cached_message(location: HFLocation, searched: list[str]) -> str:
    repo_id, config, revision = location.input_uri, location.config, location.revision
    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    load_args = ", ".join(repr(a) for a in (repo_id, config) if a) + (f", revision={revision!r}" if revision else "")
    lines = [
        f"dataset {repo_id!r} is not in the local cache"
        + (" and offline mode is on (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE)" if offline else "")
        + "; uniaudio reads local copies only. Searched:",
        *(f"  - {s}" for s in searched),
        "Fetch it on a connected machine, then copy it here, with either:",
        f"  huggingface-cli download {repo_id} --repo-type dataset"
        + (f" --revision {revision}" if revision else "")
        + "   (fills $HF_HUB_CACHE; pass the same name as INPUT)",
        f"  python -c \"import datasets; datasets.load_dataset({load_args}).save_to_disk('DIR')\""
        "   (pass DIR as INPUT)",
    ]
    return "\n".join(lines)
