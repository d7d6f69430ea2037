"""Reading Hugging Face-style tables (parquet / arrow files) row by row without decoding audio.

Shared by the ``hf`` source and by every named source whose release is an HF dataset (MLS parquet,
AudioSet parquet, CapSpeech, LP-MusicCaps-MSD), so there is one parquet reader in the project.

Audio columns in HF releases hold ``{"bytes": ..., "path": ...}`` structs (or plain binary). Rows are
yielded with the audio column replaced by a light :class:`AudioRef` (no bytes), and the record's
``member`` is ``"<row>:<column>"`` (see :mod:`uniaudio.pipelines.records`), which the audio stage
resolves by reading that one row's bytes again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from uniaudio.pipelines import storage

__all__ = ["AudioRef", "iter_table_rows", "read_audio_cell", "table_columns", "table_files"]

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
