"""``.npy`` members without pickle: a fast encoder byte-identical to ``np.save`` and a cached decoder."""

from __future__ import annotations

import io
import math
import struct

import numpy as np

__all__ = ["load_npy", "npy_bytes"]

_npy_header_cache: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` (format 1.0) encoding of a C-contiguous array, byte-identical to ``np.save``.

    Headers are cached per (dtype, shape), which makes this several times cheaper than ``np.save``
    into a BytesIO for the small token arrays the store holds.
    """
    array = np.ascontiguousarray(array)
    cache_key = (array.dtype, array.shape)
    header = _npy_header_cache.get(cache_key)
    if header is None:
        if array.dtype.hasobject:
            raise ValueError("object arrays cannot be stored (they would need pickle)")
        descr = np.lib.format.dtype_to_descr(array.dtype)
        shape = repr(array.shape) if array.ndim != 1 else f"({array.shape[0]},)"
        text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape}, }}"
        total = 10 + len(text) + 1
        text += " " * ((64 - total % 64) % 64) + "\n"
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")
        if len(_npy_header_cache) < 4096:
            _npy_header_cache[cache_key] = header
    return header + array.tobytes()


_npy_layout_cache: dict[bytes, tuple[np.dtype, tuple[int, ...], bool, int]] = {}


def load_npy(data: bytes) -> np.ndarray:
    """Decode ``.npy`` bytes like ``np.load(allow_pickle=False)``, caching parsed headers.

    Object dtypes are refused (they would need pickle). The result is a writable copy.
    """
    header_len = 10 + int.from_bytes(data[8:10], "little") if data[6:7] == b"\x01" else None
    layout = _npy_layout_cache.get(data[:header_len]) if header_len else None
    if layout is None:
        fmt = io.BytesIO(data)
        version = np.lib.format.read_magic(fmt)
        if version not in ((1, 0), (2, 0)):
            return np.load(io.BytesIO(data), allow_pickle=False)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fmt)
        if dtype.hasobject:
            raise ValueError("object arrays cannot be loaded without pickle")
        layout = (dtype, shape, fortran, fmt.tell())
        if header_len and len(_npy_layout_cache) < 4096:
            _npy_layout_cache[data[:header_len]] = layout
    dtype, shape, fortran, offset = layout
    count = math.prod(shape)
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()
