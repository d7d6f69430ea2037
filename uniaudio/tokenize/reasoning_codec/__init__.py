"""ReasoningCodec (UniAudio 2.0's audio tokenizer), the released architecture; see docs/codec.md."""

from uniaudio.tokenize.reasoning_codec.checkpoint import CheckpointMismatchError, CheckpointSet
from uniaudio.tokenize.reasoning_codec.config import OFFICIAL, TINY, CodecConfig, codec_config
from uniaudio.tokenize.reasoning_codec.tiny_set import tiny_set_dir, write_tiny_set
from uniaudio.tokenize.reasoning_codec.tokenizer import CodecTokenizer, EncodedAudio, resolve_checkpoint_set

__all__ = [
    "OFFICIAL",
    "TINY",
    "CheckpointMismatchError",
    "CheckpointSet",
    "CodecConfig",
    "CodecTokenizer",
    "EncodedAudio",
    "codec_config",
    "resolve_checkpoint_set",
    "tiny_set_dir",
    "write_tiny_set",
]
