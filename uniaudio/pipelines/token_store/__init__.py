"""The WebDataset token store: format, writer, readers, validation and statistics (docs/formats.md)."""

from uniaudio.pipelines.token_store.format import StoreSpec
from uniaudio.pipelines.token_store.index import ShardEntry, StoreIndex, read_index
from uniaudio.pipelines.token_store.reader import iter_store, read_store_ray
from uniaudio.pipelines.token_store.sample import TokenSample, sample_metadata
from uniaudio.pipelines.token_store.validate import Problem, validate_store
from uniaudio.pipelines.token_store.writer import DuplicateKeyError, TokenStoreWriter

__all__ = [
    "DuplicateKeyError",
    "Problem",
    "ShardEntry",
    "StoreIndex",
    "StoreSpec",
    "TokenSample",
    "TokenStoreWriter",
    "iter_store",
    "read_index",
    "read_store_ray",
    "sample_metadata",
    "validate_store",
]
