"""The frozen encoders' copies inside ``ReasoningCodec.checkpoint``, applied the way the release does.

The released code builds Whisper, WavLM and MusicFM from their own files, then loads
``ReasoningCodec.checkpoint`` last with ``strict=False``: the checkpoint's ``whisper_encoder.*``,
``wavlm_encoder.*`` and ``pretrained_model.*`` tensors replace the standalone weights (BatchNorm running
statistics included). :func:`apply_encoder_copies` does the same, strictly:

* ``whisper_encoder.X`` → Whisper encoder ``X``; ``wavlm_encoder.X`` → WavLM ``X``;
  ``pretrained_model.…conv.X`` / ``….conformer.X`` → MusicFM (the leftmost ``conv.``/``conformer.``
  segment, as for ``music_ssl.pt``); MusicFM's pre-training heads (``quantizer_*``, ``linear``,
  ``cls_token``, mel buffers) are known and skipped;
* old weight-norm names (``weight_g``/``weight_v``) are matched to transformers' parametrisation names;
* an entry that names no parameter, or has another shape, is an error (:class:`CheckpointMismatchError`);
* entries whose values differ from the standalone files are listed in a warning and in the returned
  :class:`EncoderCopies`; the checkpoint's values win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from uniaudio.tokenize.reasoning_codec.checkpoint import CheckpointMismatchError
from uniaudio.tokenize.reasoning_codec.frozen_encoders import MUSIC_KEY, FrozenEncoders, current_weight_norm_name

log = logging.getLogger(__name__)
PREFIXES = {"whisper_encoder.": "whisper_encoder", "wavlm_encoder.": "wavlm", "pretrained_model.": "music"}


@dataclass
class EncoderCopies:
    """What the codec checkpoint's encoder copies did: tensors loaded per encoder, and those that differ."""

    loaded: dict[str, int] = field(default_factory=dict)
    differing: list[str] = field(default_factory=list)


def _target_name(name: str, expected: dict[str, torch.Tensor]) -> str:
    return name if name in expected else current_weight_norm_name(name)


def _split(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PREFIXES.values()}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for prefix, part in PREFIXES.items():
            if key.startswith(prefix):
                rest = key[len(prefix):]
                if part == "music":
                    match = MUSIC_KEY.search(rest)
                    if match is None:
                        break  # pre-training heads and mel buffers of MusicFM: not part of the encoder
                    rest = match.group(1)
                parts[part][rest] = value
                break
    return parts


@torch.no_grad()
def apply_encoder_copies(encoders: FrozenEncoders, state: dict[str, torch.Tensor], source: str) -> EncoderCopies:
    """Overwrite the encoders with the checkpoint's copies (see the module docstring)."""
    report = EncoderCopies()
    problems: list[str] = []
    updates: list[tuple[nn.Module, dict[str, torch.Tensor]]] = []
    for part, copies in _split(state).items():
        if not copies:
            continue
        module: nn.Module = getattr(encoders, part)
        expected = module.state_dict()
        new: dict[str, torch.Tensor] = {}
        for name, value in copies.items():
            target = _target_name(name, expected)
            if target not in expected:
                problems.append(f"unexpected {part}: {name}")
            elif value.shape != expected[target].shape:
                problems.append(f"mis-shaped {part}: {name}: checkpoint {list(value.shape)}, "
                                f"encoder {list(expected[target].shape)}")
            else:
                new[target] = value
                if not torch.equal(value.to(expected[target].dtype), expected[target]):
                    report.differing.append(f"{part}.{target}")
        report.loaded[part] = len(new)
        updates.append((module, new))
    if problems:
        raise CheckpointMismatchError(f"{source}: encoder copies do not fit the encoders:\n  "
                                      + "\n  ".join(problems))
    for module, new in updates:
        module.load_state_dict(new, strict=False)
    if report.differing:
        log.warning("%s: %d encoder tensors differ from the standalone files; the checkpoint's copies are used "
                    "(as released): %s", source, len(report.differing), ", ".join(report.differing[:20]))
    return report


def released_encoder_copies(encoders: FrozenEncoders) -> dict[str, torch.Tensor]:
    """The encoders' weights under the names the released codec checkpoint stores them
    (MusicFM nested as ``pretrained_model.model.model.*``: BESTRQ_Model → fairseq model → MusicFM25Hz)."""
    out: dict[str, torch.Tensor] = {}
    for prefix, module in (("whisper_encoder.", encoders.whisper_encoder), ("wavlm_encoder.", encoders.wavlm),
                           ("pretrained_model.model.model.", encoders.music)):
        out |= {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}
    return out
