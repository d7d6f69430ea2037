"""Text documents from a text corpus: JSON Lines files or any Hugging Face dataset input.

:func:`list_document_files` resolves INPUT once, on the driver, into :class:`DocumentFile`\\ s (one unit
of parallel work each) and checks on the first file that the text/id columns exist (a missing column
raises ``ValueError`` listing the columns there are). :func:`iter_documents` reads one file.

INPUT is

* a ``.jsonl`` / ``.jsonl.gz`` / ``.json.gz`` file (one JSON object per line; OLMo/Dolma shards are
  gzipped JSON Lines), or a folder of them (searched recursively);
* anything the ``hf`` source accepts (:func:`~uniaudio.pipelines.sources.hf_tables.resolve_tables`):
  a ``.parquet``/``.arrow`` file, a folder of them, a ``save_to_disk`` folder, or a dataset name found
  in the local caches (``config``, ``split``, ``revision``). Tables are streamed batch by batch, reading
  only the text and id columns.

A document's id is its ``id_column`` value, else ``<file>_<n>`` (``<file>``: the file's path under the
input without suffix, ``n``: row or line number, from 0). Rows whose text is null, and JSON lines
without the text field, are yielded with ``text=None`` (the builder counts them as skipped); the
columns are checked on the first file's schema (tables) or first line (JSON Lines).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from uniaudio.core import storage
from uniaudio.pipelines.sources.hf_tables import HFLocation, resolve_tables, stream_table_rows, table_columns

__all__ = ["DocumentFile", "TextInput", "iter_documents", "list_document_files"]

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")


@dataclass(frozen=True)
class TextInput:
    """Where the documents are and which columns hold the text and (optionally) the id."""

    input_uri: str
    text_column: str = "text"
    id_column: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    name: str | None = None  # corpus name in sentence keys (default: dataset name or input stem)


@dataclass(frozen=True)
class DocumentFile:
    """One file of documents: ``uri`` to read, ``file_id`` for positional ids, ``kind`` jsonl or table."""

    uri: str
    file_id: str
    kind: str


def _strip_suffix(name: str) -> str:
    for suffix in (*JSONL_SUFFIXES, ".parquet", ".arrow"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def list_document_files(text_input: TextInput) -> tuple[str, list[DocumentFile]]:
    """``(corpus name, files)`` for ``text_input``; raises ``ValueError`` on a missing column or no files."""
    uri = text_input.input_uri
    if not storage.is_remote(uri) and os.path.exists(storage.strip_scheme(uri)):
        uri = os.path.abspath(storage.strip_scheme(uri))  # Ray workers must not depend on the cwd
    jsonl = _jsonl_files(uri)
    if jsonl:
        path = storage.strip_scheme(uri).rstrip("/")
        root = posixpath.dirname(path) if uri.endswith(JSONL_SUFFIXES) else path
        name = _strip_suffix(posixpath.basename(path))
        docs = [
            DocumentFile(f, _strip_suffix(posixpath.relpath(storage.strip_scheme(f), root)), "jsonl")
            for f in jsonl
        ]
    else:
        location = HFLocation(uri, config=text_input.config, split=text_input.split, revision=text_input.revision)
        tables = resolve_tables(location)
        name = tables.name
        docs = [
            DocumentFile(tables.uri(rel), _strip_suffix(rel) or _strip_suffix(posixpath.basename(uri)), "table")
            for rel in sorted(tables.files)
        ]
    if not docs:
        raise ValueError(f"{uri}: no document files found")
    _check_columns(docs[0], text_input)
    return text_input.name or name, docs


def _jsonl_files(uri: str) -> list[str]:
    """The JSON Lines file ``uri``, or those under the folder ``uri``; empty if neither."""
    if uri.endswith(JSONL_SUFFIXES):
        if not storage.exists(uri):
            raise ValueError(f"{uri}: no such file")
        return [uri]
    if not storage.filesystem(uri).isdir(storage.strip_scheme(uri)):
        return []
    return sorted({f for suffix in JSONL_SUFFIXES for f in storage.glob(uri, f"**/*{suffix}")})


def _wanted_columns(text_input: TextInput) -> list[str]:
    return [c for c in (text_input.text_column, text_input.id_column) if c]


def _check_columns(doc: DocumentFile, text_input: TextInput) -> None:
    if doc.kind == "table":
        present = table_columns(doc.uri)
    else:
        first = next(_jsonl_objects(doc.uri), None)
        present = list(first) if first is not None else []
    missing = [c for c in _wanted_columns(text_input) if c not in present]
    if missing:
        raise ValueError(
            f"{doc.uri}: no column(s) {', '.join(missing)}; columns: {', '.join(present) or 'none'} "
            "(choose with --text-column / --id-column)"
        )


def _jsonl_objects(uri: str) -> Iterator[dict]:
    with (
        storage.open_uri(uri) as raw,
        gzip.open(raw) if uri.endswith(".gz") else contextlib.nullcontext(raw) as f,
    ):
        for line_no, line in enumerate(f):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"{uri} line {line_no + 1}: not a JSON object")
            yield obj


def iter_documents(doc: DocumentFile, text_input: TextInput) -> Iterator[tuple[str, str | None]]:
    """``(document id, text)`` for every row/line of one file, in file order."""
    if doc.kind == "table":
        rows = (row for _, row in stream_table_rows(doc.uri, columns=_wanted_columns(text_input)))
    else:
        rows = _jsonl_objects(doc.uri)
    for n, row in enumerate(rows):
        doc_id = row.get(text_input.id_column) if text_input.id_column else None
        yield (f"{doc.file_id}_{n}" if doc_id is None else str(doc_id)), row.get(text_input.text_column)
