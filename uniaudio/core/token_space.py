"""Every special id and card of the UniAudio 2.0 token space, in one validated config.

Audio ids (streams 0-7 of the (T, 9) sequence) live in one per-codebook space of size
``card = reason_card + recon_card``:

- ``[0, reason_card)``: reasoning ids: the ReasoningCodec's reasoning codes ``[0, reason_codebook_size)``
  followed by the reasoning specials (BOS, EOS, PAD);
- ``[reason_card, card)``: reconstruction ids, i.e. a reconstruction code or special ``x`` is stored as
  ``x + reason_card`` (the released offset), codes ``[0, recon_codebook_size)`` then the specials (BOS,
  EOS, PAD, audio-prompt BOS/EOS).

The released code reads the real cards and special ids from ``llm_config.yaml``, which ships only with the
Hugging Face checkpoint. The defaults here follow the recovered dataloader where it is consistent
(reasoning BOS/EOS/PAD 4096/4097/4099, audio-prompt BOS/EOS 8196/8197) and put the reconstruction
BOS/EOS/PAD right after the codes (8192/8193/8194: the dataloader's 10000-10002 would not fit a card of
8200). :meth:`AudioTokens.standard` builds that arrangement for any codebook sizes.

Text ids (stream 8) are LLaMA-3.2 ids; the role markers are the reserved ids of the released modified
tokenizer (``<|begin_of_text|>`` = base + 0, ``<transcription>`` = base + 11, ...), expressed relative to
``special_base`` (128000 for LLaMA-3.2) so small test vocabularies can keep the same arrangement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Offsets from ``TextTokens.special_base`` of the released modified LLaMA-3.2 tokenizer
# (tools/tokenizer/Text2ID/llama3_2_tokenizer/tokenizer_config.json).
_TEXT_MARKER_OFFSETS: dict[str, tuple[int, int]] = {
    "think": (2, 3),
    "transcription": (11, 12),
    "lyric": (13, 14),
    "caption": (15, 16),
    "answer": (17, 5),
}
_BEGIN_OF_TEXT, _END_OF_TEXT, _TEXT_PAD = 0, 1, 20


@dataclass(frozen=True)
class AudioTokens:
    """Cards and special ids of the audio streams (see the module docstring for the id space).

    Reconstruction specials are given in the reconstruction space (before the ``+reason_card`` offset).
    """

    n_codebooks: int = 8
    reason_codebook_size: int = 4096
    reason_bos: int = 4096
    reason_eos: int = 4097
    reason_pad: int = 4099
    reason_card: int = 4100
    recon_codebook_size: int = 8192
    recon_bos: int = 8192
    recon_eos: int = 8193
    recon_pad: int = 8194
    prompt_bos: int = 8196
    prompt_eos: int = 8197
    recon_card: int = 8200

    def __post_init__(self) -> None:
        if self.n_codebooks < 1:
            raise ValueError(f"AudioTokens.n_codebooks must be >= 1, got {self.n_codebooks}")
        _check_specials("reason", self.reason_codebook_size, self.reason_card,
                        {"reason_bos": self.reason_bos, "reason_eos": self.reason_eos,
                         "reason_pad": self.reason_pad})
        _check_specials("recon", self.recon_codebook_size, self.recon_card,
                        {"recon_bos": self.recon_bos, "recon_eos": self.recon_eos,
                         "recon_pad": self.recon_pad, "prompt_bos": self.prompt_bos,
                         "prompt_eos": self.prompt_eos})

    @classmethod
    def standard(cls, reason_codebook_size: int, recon_codebook_size: int, n_codebooks: int = 8) -> AudioTokens:
        """The default arrangement for given codebook sizes (specials right after the codes)."""
        r, s = reason_codebook_size, recon_codebook_size
        return cls(n_codebooks=n_codebooks, reason_codebook_size=r, reason_bos=r, reason_eos=r + 1,
                   reason_pad=r + 3, reason_card=r + 4, recon_codebook_size=s, recon_bos=s, recon_eos=s + 1,
                   recon_pad=s + 2, prompt_bos=s + 4, prompt_eos=s + 5, recon_card=s + 8)

    @property
    def card(self) -> int:
        """Size of one codebook's id space: ``reason_card + recon_card`` (``V`` of the released code)."""
        return self.reason_card + self.recon_card

    def recon_id(self, x: int) -> int:
        """A reconstruction code or special as stored in the sequence (offset by ``reason_card``)."""
        return x + self.reason_card


@dataclass(frozen=True)
class TextTokens:
    """Text-stream special ids: LLaMA-3.2's begin/end of text and the released role markers."""

    special_base: int = 128000
    markers: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(_TEXT_MARKER_OFFSETS))

    def __post_init__(self) -> None:
        if self.special_base < 0:
            raise ValueError(f"TextTokens.special_base must be >= 0, got {self.special_base}")
        for role, pair in self.markers.items():
            if len(pair) != 2 or min(pair) < 0:
                raise ValueError(f"TextTokens.markers[{role!r}] must be two offsets >= 0, got {pair}")

    @property
    def begin_of_text(self) -> int:
        return self.special_base + _BEGIN_OF_TEXT

    @property
    def end_of_text(self) -> int:
        return self.special_base + _END_OF_TEXT

    @property
    def text_pad(self) -> int:
        """``<text_pad_token>``: fills condition text in the unconditional (CFG) copy of a sequence."""
        return self.special_base + _TEXT_PAD

    def marker_ids(self, role: str) -> tuple[int, int] | None:
        """(open, close) ids wrapping a text segment of ``role``, or None for unmarked roles."""
        pair = self.markers.get(role)
        return None if pair is None else (self.special_base + pair[0], self.special_base + pair[1])

    @property
    def max_id(self) -> int:
        offsets = [_BEGIN_OF_TEXT, _END_OF_TEXT, _TEXT_PAD, *(o for p in self.markers.values() for o in p)]
        return self.special_base + max(offsets)


@dataclass(frozen=True)
class TokenLayout:
    """Audio and text special ids together: the one place the sequence format reads ids from."""

    audio: AudioTokens = field(default_factory=AudioTokens)
    text: TextTokens = field(default_factory=TextTokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenLayout:
        text = dict(data.get("text", {}))
        if "markers" in text:
            text["markers"] = {k: tuple(v) for k, v in text["markers"].items()}
        return cls(audio=AudioTokens(**data.get("audio", {})), text=TextTokens(**text))


def _check_specials(name: str, codebook_size: int, card: int, specials: dict[str, int]) -> None:
    if codebook_size < 1:
        raise ValueError(f"AudioTokens.{name}_codebook_size must be >= 1, got {codebook_size}")
    bad = {k: v for k, v in specials.items() if not codebook_size <= v < card}
    if bad:
        raise ValueError(
            f"AudioTokens: {name} specials must lie in [{name}_codebook_size={codebook_size}, "
            f"{name}_card={card}) so they collide with no code; out of range: {bad}"
        )
    if len(set(specials.values())) != len(specials):
        raise ValueError(f"AudioTokens: {name} specials must be distinct, got {specials}")
