"""Evaluation of a UniAudio 2.0 checkpoint on a sentence store (``uniaudio eval``).

- :mod:`~uniaudio.eval.token_metrics`: teacher-forced perplexity and accuracy per stream (text; each
  codebook of the reasoning and reconstruction streams), the paper's Table 2 style;
- :mod:`~uniaudio.eval.asr`: transcripts decoded by the model, scored as WER/CER against the store's text;
- :mod:`~uniaudio.eval.tts`: audio tokens generated from text, checked offline (validity, stop rate,
  duration ratio) and optionally decoded to waveforms with the ReasoningCodec;
- :mod:`~uniaudio.eval.runner`: the same evaluation over a store's shards, in process or on Ray workers.
"""
