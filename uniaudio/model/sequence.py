"""The sequence format shared by training, evaluation and generation: segments ⇄ (T, 9) token tensors.

A sequence is a list of segments. Each becomes consecutive steps of a (T, S) tensor, S = n_codebooks + 1
(streams 0..7 audio codebooks, stream 8 text), laid out as the released code does:

- :class:`TextSegment` → one text step per id: ``[0]*8 + [id]``, stream mask ``[F]*8 + [T]``. The ids are
  wrapped as ``<|begin_of_text|> [<open>] ids [<close>] <|end_of_text|>``, the markers chosen by role
  (``transcription``, ``lyric``, ``caption``, ``answer``, ``think``); ``text`` and ``prompt`` are unmarked.
- :class:`AudioSegment` → audio steps ``[c1..c8, 0]``, stream mask ``[T]*8 + [F]``:
  ``[reason_bos]*8, R (T_r frames), [reason_eos]*8, [recon_bos+RC]*8, S+RC (T_s frames), [recon_eos+RC]*8``
  with RC = ``reason_card``: reasoning and reconstruction frames are concatenated in time, not aligned.
  An ``audio_prompt`` segment is reconstruction-only and bracketed by the prompt BOS/EOS.

Every step of a segment with ``loss=True`` is a prediction target (BOS/EOS frames included). Unused stream
entries hold 0 and are masked out. :meth:`TokenSequence.labels` shifts targets to the step that predicts
them, so position t of the model's output is scored against ``labels[t]`` (-100 = not scored).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from uniaudio.core.token_space import TokenLayout
from uniaudio.model.config import AuxDecoderConfig

IGNORE = -100
"""Label value of steps and streams that are not scored."""

UNMARKED_TEXT_ROLES = ("text", "prompt")
AUDIO_ROLES = ("audio", "audio_prompt")


@dataclass(frozen=True)
class TextSegment:
    """Text ids (LLaMA-3.2 ids, without begin/end-of-text) and the role that picks their markers."""

    ids: tuple[int, ...]
    role: str = "text"
    loss: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))
        if any(i < 0 for i in self.ids):
            raise ValueError(f"TextSegment(role={self.role!r}).ids must be >= 0")


@dataclass(frozen=True, eq=False)
class AudioSegment:
    """One audio item: reasoning codes (n_codebooks, T_r) and/or reconstruction codes (n_codebooks, T_s),
    raw codec ids (no offsets). ``features`` optionally holds frozen SSL features (T_feat, dim) by target
    name, for the stage-1 distillation loss (aligned to the reconstruction frames)."""

    reasoning: Tensor | None = None
    reconstruction: Tensor | None = None
    role: str = "audio"
    loss: bool = False
    features: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in AUDIO_ROLES:
            raise ValueError(f"AudioSegment.role must be one of {AUDIO_ROLES}, got {self.role!r}")
        if self.reasoning is None and self.reconstruction is None:
            raise ValueError("AudioSegment needs reasoning or reconstruction codes (both are None)")
        if self.role == "audio_prompt" and (self.reasoning is not None or self.reconstruction is None):
            raise ValueError("AudioSegment(role='audio_prompt') holds reconstruction codes only")


Segment = TextSegment | AudioSegment


@dataclass(frozen=True)
class SegmentSpan:
    """Where segment ``index`` (of ``role``) lies in the sequence: steps ``[start, end)``."""

    index: int
    role: str
    start: int
    end: int


@dataclass
class TokenSequence:
    """One sequence: tokens (T, S) int64, stream_mask and loss_mask (T, S) bool; ``spans`` the segments'
    step ranges; plus, when an auxiliary decoder is configured, the steps whose understanding output is
    regressed (``distill_positions`` (N,)) with targets ``distill_targets[name]`` (N, frames_per_token,
    dim) and ``distill_valid[name]`` (N, frames_per_token) bool."""

    tokens: Tensor
    stream_mask: Tensor
    loss_mask: Tensor
    spans: list[SegmentSpan] = field(default_factory=list)
    distill_positions: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    distill_targets: dict[str, Tensor] = field(default_factory=dict)
    distill_valid: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def labels(self) -> Tensor:
        """(T, S) targets: ``labels[t] = tokens[t+1]`` where step t+1 is scored in that stream, else -100."""
        labels = torch.full_like(self.tokens, IGNORE)
        scored = self.loss_mask[1:] & self.stream_mask[1:]
        labels[:-1] = torch.where(scored, self.tokens[1:], labels[:-1])
        return labels

    def unconditional(self, layout: TokenLayout) -> TokenSequence:
        """The classifier-free-guidance copy: every non-loss step outside ``prompt`` segments (the task
        instruction stays, as released) replaced by a pad of its kind (text_pad; reason_pad or
        recon_pad+RC frames), same length, so both rows stay aligned."""
        a = layout.audio
        tokens = self.tokens.clone()
        cond = ~self.loss_mask.any(dim=1)
        for span in self.spans:
            if span.role == "prompt":
                cond[span.start : span.end] = False
        text = cond & self.stream_mask[:, -1]
        audio = cond & self.stream_mask[:, 0]
        tokens[text, -1] = layout.text.text_pad
        is_reason = tokens[:, 0] < a.reason_card
        tokens[audio & is_reason, :-1] = a.reason_pad
        tokens[audio & ~is_reason, :-1] = a.recon_id(a.recon_pad)
        return TokenSequence(tokens, self.stream_mask.clone(), self.loss_mask.clone(), list(self.spans))


@dataclass
class Batch:
    """Rows of ``T`` steps, each holding one sequence (:func:`collate`) or several packed back to back
    (:func:`collate_packed`), right-padded: tokens, stream_mask, loss_mask, labels (B, T, S);
    ``position_ids`` (B, T) the RoPE positions, restarting at 0 for every sample; ``document_ids`` (B, T) the
    sample's index within its row (0, 1, …), -1 on padding (attention is block-causal over them, see
    :mod:`uniaudio.model.attention`). Distillation positions index the flattened (B*T) steps."""

    tokens: Tensor
    stream_mask: Tensor
    loss_mask: Tensor
    labels: Tensor
    position_ids: Tensor
    document_ids: Tensor
    distill_positions: Tensor
    distill_targets: dict[str, Tensor]
    distill_valid: dict[str, Tensor]

    @property
    def n_samples(self) -> int:
        """Number of sequences in the batch (over all rows)."""
        return int((self.document_ids.max(dim=1).values + 1).sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            tokens=self.tokens.to(device), stream_mask=self.stream_mask.to(device),
            loss_mask=self.loss_mask.to(device), labels=self.labels.to(device),
            position_ids=self.position_ids.to(device), document_ids=self.document_ids.to(device),
            distill_positions=self.distill_positions.to(device),
            distill_targets={k: v.to(device) for k, v in self.distill_targets.items()},
            distill_valid={k: v.to(device) for k, v in self.distill_valid.items()},
        )


def build_sequence(
    segments: Sequence[Segment], layout: TokenLayout, aux: AuxDecoderConfig | None = None
) -> TokenSequence:
    """Lay ``segments`` out as one :class:`TokenSequence` (see the module docstring)."""
    if not segments:
        raise ValueError("build_sequence: no segments")
    n_streams = layout.audio.n_codebooks + 1
    rows: list[Tensor] = []
    spans: list[SegmentSpan] = []
    distill: list[tuple[int, AudioSegment]] = []
    offset = 0
    for i, seg in enumerate(segments):
        if isinstance(seg, TextSegment):
            block = _text_block(seg, layout, n_streams)
        elif isinstance(seg, AudioSegment):
            block, recon_start = _audio_block(seg, layout, n_streams, index=i)
            if aux is not None and seg.features and recon_start is not None:
                distill.append((offset + recon_start, seg))
        else:
            raise TypeError(f"build_sequence: segment {i} is {type(seg).__name__}, not a Text/AudioSegment")
        rows.append(block)
        spans.append(SegmentSpan(i, seg.role, offset, offset + block.shape[0]))
        offset += block.shape[0]
    packed = torch.cat(rows)  # (T, 3, S): tokens, stream mask, loss mask
    seq = TokenSequence(packed[:, 0], packed[:, 1].bool(), packed[:, 2].bool(), spans)
    if aux is not None:
        _attach_distillation(seq, distill, aux)
    return seq


def parse_sequence(seq: TokenSequence, layout: TokenLayout) -> list[Segment]:
    """Inverse of :func:`build_sequence` (up to canonical grouping: a reasoning block directly followed by
    a reconstruction block with the same loss flag forms one segment; unmarked text comes back as
    ``text``). Raises ``ValueError`` naming the step where the layout is broken."""
    segments: list[Segment] = []
    t, n = 0, len(seq)
    while t < n:
        is_text = bool(seq.stream_mask[t, -1])
        is_audio = bool(seq.stream_mask[t, :-1].all())
        if is_text == is_audio:
            raise ValueError(f"parse_sequence: step {t} is neither a text nor an audio step")
        end = t
        while end < n and bool(seq.stream_mask[end, -1]) == is_text:
            end += 1
        if is_text:
            segments.extend(_parse_text(seq, t, end, layout))
        else:
            segments.extend(_parse_audio(seq, t, end, layout))
        t = end
    return segments


def collate(sequences: Iterable[TokenSequence], pad_to: int | None = None) -> Batch:
    """One sequence per row, right-padded to a common length (``pad_to`` or the longest)."""
    seqs = list(sequences)
    if not seqs:
        raise ValueError("collate: no sequences")
    length = max(len(s) for s in seqs)
    if pad_to is not None:
        if pad_to < length:
            raise ValueError(f"collate: pad_to={pad_to} is shorter than the longest sequence ({length})")
        length = pad_to
    return collate_packed([[s] for s in seqs], length)


def collate_packed(rows: Sequence[Sequence[TokenSequence]], length: int, n_streams: int | None = None) -> Batch:
    """Pack each row's sequences back to back into ``length`` steps and stack the rows (see :class:`Batch`).

    Each sample keeps its own labels (its last step predicts nothing, so no target crosses a sample
    boundary), its positions restart at 0 and its document id is its index in the row; the rest of the row
    is padding (tokens 0, masks False, labels -100, document id -1). A row may be empty (all padding, e.g.
    to give every rank the same number of rows); ``n_streams`` is then needed if no row holds a sequence.
    A row longer than ``length`` raises ``ValueError`` naming it.
    """
    if not rows or length < 1:
        raise ValueError(f"collate_packed: need at least one row and length >= 1 (got {len(rows)} rows, "
                         f"length {length})")
    seqs = [s for row in rows for s in row]
    if n_streams is None:
        if not seqs:
            raise ValueError("collate_packed: every row is empty; pass n_streams")
        n_streams = seqs[0].tokens.shape[1]
    if any(s.tokens.shape[1] != n_streams for s in seqs):
        raise ValueError(f"collate_packed: sequences differ in their number of streams (expected {n_streams})")
    b = len(rows)
    tokens = torch.zeros(b, length, n_streams, dtype=torch.long)
    stream_mask = torch.zeros(b, length, n_streams, dtype=torch.bool)
    loss_mask = torch.zeros(b, length, n_streams, dtype=torch.bool)
    labels = torch.full((b, length, n_streams), IGNORE, dtype=torch.long)
    position_ids = torch.zeros(b, length, dtype=torch.long)
    document_ids = torch.full((b, length), -1, dtype=torch.long)
    positions: list[Tensor] = []
    for r, row in enumerate(rows):
        used = sum(len(s) for s in row)
        if used > length:
            raise ValueError(f"collate_packed: row {r} holds {used} steps ({[len(s) for s in row]}), more than "
                             f"its length {length}")
        start = 0
        for doc, s in enumerate(row):
            end = start + len(s)
            tokens[r, start:end] = s.tokens
            stream_mask[r, start:end] = s.stream_mask
            loss_mask[r, start:end] = s.loss_mask
            labels[r, start:end] = s.labels()
            position_ids[r, start:end] = torch.arange(len(s))
            document_ids[r, start:end] = doc
            positions.append(s.distill_positions + r * length + start)
            start = end
        position_ids[r, start:] = torch.arange(length - start)
    names = sorted({k for s in seqs for k in s.distill_targets})
    targets, valid = {}, {}
    for name in names:
        missing = [i for i, s in enumerate(seqs) if len(s.distill_positions) and name not in s.distill_targets]
        if missing:
            raise ValueError(f"collate_packed: sequences {missing} lack distillation target {name!r}")
        targets[name] = torch.cat([s.distill_targets[name] for s in seqs if name in s.distill_targets])
        valid[name] = torch.cat([s.distill_valid[name] for s in seqs if name in s.distill_valid])
    return Batch(tokens=tokens, stream_mask=stream_mask, loss_mask=loss_mask, labels=labels,
                 position_ids=position_ids, document_ids=document_ids,
                 distill_positions=torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long),
                 distill_targets=targets, distill_valid=valid)


def text_step(token: int, n_streams: int) -> tuple[Tensor, Tensor]:
    """One text step's tokens and stream mask (used by generation to extend a sequence)."""
    tokens = torch.zeros(n_streams, dtype=torch.long)
    tokens[-1] = token
    mask = torch.zeros(n_streams, dtype=torch.bool)
    mask[-1] = True
    return tokens, mask


def audio_step(frame: Tensor) -> tuple[Tensor, Tensor]:
    """One audio step from a frame of ``n_codebooks`` ids (already offset for reconstruction frames)."""
    tokens = torch.cat([frame.to(torch.long), torch.zeros(1, dtype=torch.long)])
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[-1] = False
    return tokens, mask


# ---- building ---------------------------------------------------------------------------------------


def _text_block(seg: TextSegment, layout: TokenLayout, n_streams: int) -> Tensor:
    markers = layout.text.marker_ids(seg.role)
    if markers is None and seg.role not in UNMARKED_TEXT_ROLES:
        raise ValueError(
            f"TextSegment.role {seg.role!r} is unknown; use one of "
            f"{sorted([*UNMARKED_TEXT_ROLES, *layout.text.markers])}"
        )
    ids = list(seg.ids) if markers is None else [markers[0], *seg.ids, markers[1]]
    ids = [layout.text.begin_of_text, *ids, layout.text.end_of_text]
    block = torch.zeros(len(ids), 3, n_streams, dtype=torch.long)
    block[:, 0, -1] = torch.tensor(ids)
    block[:, 1, -1] = 1
    block[:, 2, -1] = int(seg.loss)
    return block


def _audio_block(seg: AudioSegment, layout: TokenLayout, n_streams: int, index: int) -> tuple[Tensor, int | None]:
    """The segment's steps and the step (within the block) of its first reconstruction frame."""
    a = layout.audio
    frames: list[Tensor] = []
    recon_start = None
    if seg.reasoning is not None:
        codes = _check_codes(seg.reasoning, a.n_codebooks, a.reason_codebook_size, f"segment {index} reasoning")
        frames += [_special(a.reason_bos, a.n_codebooks, 1), codes.T, _special(a.reason_eos, a.n_codebooks, 1)]
    if seg.reconstruction is not None:
        codes = _check_codes(seg.reconstruction, a.n_codebooks, a.recon_codebook_size,
                             f"segment {index} reconstruction")
        bos, eos = (a.prompt_bos, a.prompt_eos) if seg.role == "audio_prompt" else (a.recon_bos, a.recon_eos)
        recon_start = sum(f.shape[0] for f in frames) + 1
        frames += [_special(a.recon_id(bos), a.n_codebooks, 1), codes.T + a.reason_card,
                   _special(a.recon_id(eos), a.n_codebooks, 1)]
    steps = torch.cat(frames)
    block = torch.zeros(steps.shape[0], 3, n_streams, dtype=torch.long)
    block[:, 0, :-1] = steps
    block[:, 1, :-1] = 1
    block[:, 2, :-1] = int(seg.loss)
    return block, recon_start


def _special(token: int, n_codebooks: int, n: int) -> Tensor:
    return torch.full((n, n_codebooks), token, dtype=torch.long)


def _check_codes(codes: Tensor, n_codebooks: int, size: int, what: str) -> Tensor:
    if codes.dim() != 2 or codes.shape[0] != n_codebooks:
        raise ValueError(f"{what}: expected codes of shape ({n_codebooks}, T), got {tuple(codes.shape)}")
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"{what}: codes must be integers, got {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= size):
        raise ValueError(f"{what}: codes must lie in [0, {size}), got [{int(codes.min())}, {int(codes.max())}]")
    return codes.to(torch.long)


def _attach_distillation(seq: TokenSequence, items: list[tuple[int, AudioSegment]], aux: AuxDecoderConfig) -> None:
    positions: list[Tensor] = []
    targets: dict[str, list[Tensor]] = {t.name: [] for t in aux.targets}
    valid: dict[str, list[Tensor]] = {t.name: [] for t in aux.targets}
    for start, seg in items:
        n_frames = seg.reconstruction.shape[1]
        positions.append(torch.arange(start, start + n_frames))
        for target in aux.targets:
            k = target.frames_per_token
            feats = seg.features.get(target.name)
            out = torch.zeros(n_frames * k, target.dim)
            ok = torch.zeros(n_frames * k, dtype=torch.bool)
            if feats is not None:
                if feats.dim() != 2 or feats.shape[1] != target.dim:
                    raise ValueError(
                        f"AudioSegment.features[{target.name!r}]: expected (T_feat, {target.dim}), "
                        f"got {tuple(feats.shape)}"
                    )
                m = min(feats.shape[0], n_frames * k)
                out[:m] = feats[:m].float()
                ok[:m] = True
            targets[target.name].append(out.view(n_frames, k, target.dim))
            valid[target.name].append(ok.view(n_frames, k))
    seq.distill_positions = torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long)
    seq.distill_targets = {
        t.name: torch.cat(targets[t.name]) if positions else torch.zeros(0, t.frames_per_token, t.dim)
        for t in aux.targets
    }
    seq.distill_valid = {
        t.name: torch.cat(valid[t.name]) if positions else torch.zeros(0, t.frames_per_token, dtype=torch.bool)
        for t in aux.targets
    }


# ---- parsing ----------------------------------------------------------------------------------------


def _parse_text(seq: TokenSequence, start: int, end: int, layout: TokenLayout) -> list[TextSegment]:
    tt = layout.text
    ids = seq.tokens[start:end, -1].tolist()
    loss = seq.loss_mask[start:end, -1].tolist()
    by_open = {tt.marker_ids(r)[0]: r for r in tt.markers}
    out: list[TextSegment] = []
    i = 0
    while i < len(ids):
        if ids[i] != tt.begin_of_text:
            raise ValueError(f"parse_sequence: text at step {start + i} does not start with <|begin_of_text|>")
        try:
            j = ids.index(tt.end_of_text, i + 1)
        except ValueError:
            raise ValueError(f"parse_sequence: text from step {start + i} has no <|end_of_text|>") from None
        body = ids[i + 1 : j]
        role = by_open.get(body[0]) if body else None
        if role is not None and len(body) >= 2 and body[-1] == tt.marker_ids(role)[1]:
            body = body[1:-1]
        else:
            role = "text"
        out.append(TextSegment(tuple(body), role=role, loss=bool(loss[i])))
        i = j + 1
    return out


def _parse_audio(seq: TokenSequence, start: int, end: int, layout: TokenLayout) -> list[AudioSegment]:
    a = layout.audio
    frames = seq.tokens[start:end, :-1]
    loss = seq.loss_mask[start:end, :-1].any(dim=1).tolist()
    brackets = {
        a.reason_bos: (a.reason_eos, "reasoning", 0),
        a.recon_id(a.recon_bos): (a.recon_id(a.recon_eos), "reconstruction", a.reason_card),
        a.recon_id(a.prompt_bos): (a.recon_id(a.prompt_eos), "prompt", a.reason_card),
    }
    blocks: list[tuple[str, Tensor, bool]] = []
    i = 0
    while i < len(frames):
        bos = int(frames[i, 0])
        if bos not in brackets or not bool((frames[i] == bos).all()):
            raise ValueError(f"parse_sequence: audio step {start + i} is not a BOS frame")
        eos, kind, offset = brackets[bos]
        is_eos = (frames[i + 1 :] == eos).all(dim=1).nonzero()
        if len(is_eos) == 0:
            raise ValueError(f"parse_sequence: {kind} block from step {start + i} has no EOS frame")
        j = i + 1 + int(is_eos[0])
        blocks.append((kind, (frames[i + 1 : j] - offset).T.contiguous(), bool(loss[i])))
        i = j + 1
    out: list[AudioSegment] = []
    k = 0
    while k < len(blocks):
        kind, codes, flag = blocks[k]
        if kind == "prompt":
            out.append(AudioSegment(reconstruction=codes, role="audio_prompt", loss=flag))
        elif kind == "reasoning" and k + 1 < len(blocks) and blocks[k + 1][0] == "reconstruction" \
                and blocks[k + 1][2] == flag:
            out.append(AudioSegment(reasoning=codes, reconstruction=blocks[k + 1][1], loss=flag))
            k += 1
        elif kind == "reasoning":
            out.append(AudioSegment(reasoning=codes, loss=flag))
        else:
            out.append(AudioSegment(reconstruction=codes, loss=flag))
        k += 1
    return out
