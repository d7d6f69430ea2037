"""The sentence stores a stage trains on: what they hold, whether they fit the model, their mixture weights.

:func:`open_store` reads a store's index (through :mod:`uniaudio.sentences`); :func:`check_fits` refuses a
store whose text vocabulary or codec cards do not fit the model, before any training starts, and
:func:`check_split` one that would leave a rank without samples; :func:`mixture_weights` turns the
recipe's per-task weights (or, without any, the stores' token counts) into one weight per store;
:func:`load_shard` is what a training worker calls to read one shard as
:class:`~uniaudio.train.samples.StoreSample`\\ s. Tar files are read by the sentences package's reader only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from uniaudio.core import storage
from uniaudio.model.config import UniAudioConfig
from uniaudio.sentences import store as sentence_store
from uniaudio.train.recipe import StageRecipe
from uniaudio.train.samples import StoreSample
from uniaudio.train.stream import owned_samples

TEXT_ONLY = "text-only"


class StoreMismatch(ValueError):
    """A store that cannot train this model or stage (the message names the store and the reason)."""


@dataclass(frozen=True)
class StoreInfo:
    """A store's index, as the trainer needs it."""

    uri: str
    version: int
    shards: tuple[str, ...]
    samples: int
    tokens: int
    tasks: dict[str, int]
    """Samples per task."""
    text_vocab_size: int | None = None
    codec_fingerprint: str | None = None
    features: dict[str, int] = field(default_factory=dict)
    """Distillation feature fields the store's first sample carries, with their dimension."""
    codebooks: tuple[int, ...] = ()
    max_codes: tuple[int, int] = (0, 0)
    first_key: str | None = None
    shard_samples: tuple[int, ...] = ()
    """Samples per shard, in ``shards`` order."""

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "shards": list(self.shards), "samples": self.samples, "tokens": self.tokens,
                "tasks": self.tasks}


def open_store(uri: str) -> StoreInfo:
    """The store's :class:`StoreInfo` from its ``index.json`` plus its first sample (codebooks, code ranges and
    distillation features are only visible in the samples); errors name the store."""
    index = sentence_store.read_index(uri)
    shards = index.get("shards") or []
    tasks = {str(k): int(v.get("samples", 0)) for k, v in (index.get("tasks") or {}).items()}
    info = StoreInfo(
        uri=uri, version=int(index["version"]), shards=tuple(s["name"] for s in shards),
        samples=sum(int(s.get("samples", 0)) for s in shards),
        shard_samples=tuple(int(s.get("samples", 0)) for s in shards),
        tokens=sum(int(s.get("tokens", 0)) for s in shards),
        tasks=tasks, text_vocab_size=(index.get("tokenizer") or {}).get("vocab_size"),
        codec_fingerprint=index.get("codec_fingerprint"),
    )
    first = next(iter(sentence_store.iter_shard(sentence_store.shard_uris(uri, index)[0])), None) if shards else None
    if first is None:
        return info
    features: dict[str, int] = {}
    codebooks: set[int] = set()
    max_ids = [0, 0]
    for seg in first.segments:
        if seg.modality == "audio":
            codebooks.update((seg.reason.shape[0], seg.recon.shape[0]))
            max_ids = [max(max_ids[0], int(seg.reason.max(initial=0))), max(max_ids[1], int(seg.recon.max(initial=0)))]
            features.update({name: int(arr.shape[1]) for name, arr in seg.features.items()})
    return replace(info, features=features, codebooks=tuple(sorted(codebooks)), first_key=first.key,
                   max_codes=tuple(max_ids))


def check_fits(info: StoreInfo, config: UniAudioConfig) -> None:
    """Raise :class:`StoreMismatch` when the store's ids cannot be embedded by ``config``: a text vocabulary
    larger than the model's, another number of codebooks, or codes beyond the model's codebook sizes (seen in
    the store's first sample; every sample is checked again when it is laid out for training)."""
    if info.samples == 0:
        raise StoreMismatch(f"{info.uri}: the store holds no samples")
    if info.text_vocab_size is not None and info.text_vocab_size > config.text_vocab_size:
        raise StoreMismatch(f"{info.uri}: text vocabulary of {info.text_vocab_size} ids does not fit the model's "
                            f"{config.text_vocab_size} (model {config.name!r}); tokenize with the model's tokenizer")
    audio = config.tokens.audio
    if info.codebooks and info.codebooks != (audio.n_codebooks,):
        raise StoreMismatch(f"{info.uri}: sample {info.first_key!r} has {list(info.codebooks)} codebooks, the model "
                            f"{config.name!r} {audio.n_codebooks}; the store was tokenized with another codec")
    for kind, top, size in (("reasoning", info.max_codes[0], audio.reason_codebook_size),
                            ("reconstruction", info.max_codes[1], audio.recon_codebook_size)):
        if top >= size:
            raise StoreMismatch(f"{info.uri}: sample {info.first_key!r} has {kind} code {top}, beyond the model "
                                f"{config.name!r}'s codebook size {size}; the store was tokenized with another codec")
    if config.aux_decoder is not None:
        for t in config.aux_decoder.targets:
            if t.name in info.features and info.features[t.name] != t.dim:
                raise StoreMismatch(f"{info.uri}: distillation feature {t.name!r} is {info.features[t.name]}-d, "
                                    f"the model's auxiliary decoder predicts {t.dim}-d")


def check_split(info: StoreInfo, workers: int) -> None:
    """Raise :class:`StoreMismatch` when some of ``workers`` ranks would own no sample of the store (ranks read
    disjoint samples, :mod:`uniaudio.train.stream`): a store smaller than the run, refused before training."""
    owned = [owned_samples(info.shard_samples, r, workers) for r in range(workers)]
    empty = [r for r, n in enumerate(owned) if n == 0]
    if empty:
        raise StoreMismatch(
            f"{info.uri}: {info.samples} samples in {len(info.shards)} shards cannot feed {workers} workers (each "
            f"rank reads its own samples): rank(s) {empty} would get none (samples per rank: {owned}); use fewer "
            "--workers, more data in this store, or leave it out")


def mixture_weights(infos: list[StoreInfo], recipe: StageRecipe) -> list[float]:
    """One weight per store: with a recipe mixture, each task's weight is shared among the stores holding
    it in proportion to their samples of it; without one, each store weighs its tokens. Stores with no task
    of the stage, and text-only stores in a stage without text-only data, are refused."""
    for info in infos:
        if TEXT_ONLY in info.tasks and not recipe.text_only:
            raise StoreMismatch(f"{info.uri}: text-only data enters in stages 3 and 4, not stage {recipe.stage}")
        if not set(info.tasks) & set(recipe.tasks):
            raise StoreMismatch(f"{info.uri}: holds tasks {sorted(info.tasks)}, none of which stage {recipe.stage} "
                                f"trains ({list(recipe.tasks)}); drop it or change tasks with --set")
    if not recipe.mixture:
        return [float(i.tokens) for i in infos]
    weights = []
    for info in infos:
        w = 0.0
        for task, n in info.tasks.items():
            total = sum(other.tasks.get(task, 0) for other in infos)
            w += recipe.mixture.get(task, 0.0) * n / total if total else 0.0
        weights.append(w)
    if sum(weights) <= 0:
        raise StoreMismatch(f"the recipe mixture {recipe.mixture} gives every store weight 0")
    return weights


def load_shard(uri: str, shard: str) -> list[StoreSample]:
    """The samples of one shard of the store at ``uri``, in shard order."""
    return [StoreSample(key=s.key, task=s.task, segments=tuple(s.to_model_segments()), tokens=int(s.num_tokens))
            for s in sentence_store.iter_shard(storage.join(uri, shard))]
