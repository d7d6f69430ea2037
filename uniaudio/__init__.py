"""uniaudio: data pipelines, ReasoningCodec tokenization and staged training for UniAudio 2.0-style models."""

__version__ = "0.1.0"
