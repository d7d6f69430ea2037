"""Staged training of the UniAudio 2.0 model on sentence stores: Ray Train + DeepSpeed (docs/training.md).

- :mod:`~uniaudio.train.recipe` (+ ``recipes/stage1..4.yaml``): validated stage recipes, user files, overrides;
- :mod:`~uniaudio.train.stores`: store checks against the model and the stage, mixture weights, shard reading;
- :mod:`~uniaudio.train.samples`, :mod:`~uniaudio.train.stream`, :mod:`~uniaudio.train.loader`: the per-rank,
  deterministic, exactly resumable data path (mixing, CFG dropout, packing, token budget);
- :mod:`~uniaudio.train.engine`, :mod:`~uniaudio.train.worker`: the model, optimiser and DeepSpeed engine, and
  the loop each Ray Train worker runs;
- :mod:`~uniaudio.train.checkpoints`: checkpoint contents, resume, consolidation and export;
- :mod:`~uniaudio.train.metrics`, :mod:`~uniaudio.train.plot`: metrics.jsonl, MFU, loss curves;
- :mod:`~uniaudio.train.run`: planning and running a stage (the ``uniaudio train`` command).
"""
