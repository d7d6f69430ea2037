"""Music stems (vocals, accompaniment) with demucs, from a local HTDemucs checkpoint loaded without unpickling code.

Loading (:func:`load_demucs`): demucs saves a model as a pickle of ``{"klass", "args", "kwargs", "state"[,
"training_args"]}`` (``demucs.states.serialize_model``; ``klass`` is the model class itself). It is read with
``torch.load(weights_only=True)`` and an explicit allow-list: demucs' model classes (``HTDemucs``, ``HDemucs``,
``Demucs``), ``fractions.Fraction`` (segment lengths) and the numpy scalar/dtype reconstructors that training
arguments may hold. The file's globals are listed first (``torch.serialization.get_unsafe_globals_in_checkpoint``):
one outside the allow-list is refused with a ``ValueError`` naming it, before anything is unpickled. A
``.safetensors`` file holds the state dict, with the class name and its keyword arguments (JSON) in the
metadata keys ``klass`` and ``kwargs`` (:func:`save_demucs_safetensors` writes one). Quantized (DiffQ) states
and bags of models are not supported.

Separation (:func:`separate_vocals`): a 24 kHz mono waveform is resampled to the model's rate and channel
count, normalised as demucs does (zero mean, unit std), separated with ``demucs.apply.apply_model`` (no random
shifts: deterministic), and the ``vocals`` stem and the sum of the other stems (accompaniment) come back as
24 kHz mono float32 of the input's length.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from uniaudio.sentences.audio_render import CODEC_SAMPLE_RATE, to_codec_rate

__all__ = ["DemucsModel", "allowed_globals", "load_demucs", "save_demucs_safetensors", "separate_vocals"]


def _model_classes() -> dict[str, type]:
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return {c.__name__: c for c in (HTDemucs, HDemucs, Demucs)}


def allowed_globals() -> dict[str, Any]:
    """Fully qualified name → object, for every global a demucs ``.th`` file may reference."""
    out: dict[str, Any] = {f"{c.__module__}.{c.__name__}": c for c in _model_classes().values()}
    out["fractions.Fraction"] = Fraction
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[f"{module}.scalar"] = scalar
    out["numpy.dtype"] = np.dtype
    for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType"):
        out[f"numpy.dtypes.{name}"] = getattr(np.dtypes, name)
    return out


class DemucsModel:
    """A loaded demucs model in eval mode, with its file's sha256 prefix (``fingerprint``)."""

    def __init__(self, model: Any, fingerprint: str, path: str) -> None:
        self.model = model.eval()
        self.fingerprint = fingerprint
        self.path = path
        if "vocals" not in model.sources:
            raise ValueError(f"{path}: the demucs model has no 'vocals' stem (sources {list(model.sources)})")

    @property
    def sources(self) -> list[str]:
        return list(self.model.sources)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _load_th(path: Path) -> tuple[type, tuple, dict, dict]:
    import torch
    from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

    allowed = allowed_globals()
    try:
        needed = get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # noqa: BLE001 - not a torch zip file / corrupt: a message naming the file
        raise ValueError(f"{path}: not a readable demucs checkpoint ({type(exc).__name__}: {exc})") from exc
    foreign = [g for g in needed if g not in allowed]
    if foreign:
        raise ValueError(f"{path}: refused: the checkpoint needs {', '.join(foreign)}, which is not a demucs model "
                         "class or plain data (only demucs' own classes are allowed; nothing else is unpickled)")
    with safe_globals([(obj, name) for name, obj in allowed.items()]):
        package = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise ValueError(f"{path}: not a demucs model package (expected klass, args, kwargs, state)")
    klass = package["klass"]
    if klass not in _model_classes().values():
        raise ValueError(f"{path}: klass {klass!r} is not a demucs model class")
    if package["state"].get("__quantized"):
        raise ValueError(f"{path}: quantized (DiffQ) demucs states are not supported; use a full-precision model")
    return klass, tuple(package["args"]), dict(package["kwargs"]), package["state"]


def _load_safetensors(path: Path) -> tuple[type, tuple, dict, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    classes = _model_classes()
    if meta.get("klass") not in classes or "kwargs" not in meta:
        raise ValueError(f"{path}: a demucs safetensors file needs metadata 'klass' (one of {sorted(classes)}) and "
                         "'kwargs' (JSON)")
    kwargs = json.loads(meta["kwargs"])
    if "segment" in kwargs and isinstance(kwargs["segment"], list):  # a Fraction stored as [num, den]
        kwargs["segment"] = Fraction(*kwargs["segment"])
    return classes[meta["klass"]], (), kwargs, load_file(str(path))


@lru_cache(maxsize=2)
def load_demucs(path: str) -> DemucsModel:
    """The model in ``path`` (a demucs ``.th`` package or a ``.safetensors`` file); ``ValueError`` naming the file
    for anything else, ``FileNotFoundError`` when it is missing. Cached per process."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--demucs-model {path}: no such file")
    klass, args, kwargs, state = (_load_safetensors if file.suffix == ".safetensors" else _load_th)(file)
    try:
        model = klass(*args, **kwargs)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (TypeError, RuntimeError, KeyError) as exc:
        raise ValueError(f"{path}: the state does not fit {klass.__name__}({kwargs}): {exc}") from exc
    return DemucsModel(model, _sha(file), path)


def save_demucs_safetensors(model: Any, path: str | Path) -> Path:
    """Write a demucs model (built through its ``capture_init`` constructor) as ``.safetensors``."""
    from safetensors.torch import save_file

    args, kwargs = model._init_args_kwargs
    if args:
        raise ValueError("save_demucs_safetensors: the model was built with positional arguments; use keywords")
    kw = {k: ([v.numerator, v.denominator] if isinstance(v, Fraction) else v) for k, v in kwargs.items()}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"klass": type(model).__name__, "kwargs": json.dumps(kw)})
    return Path(path)


def separate_vocals(demucs: DemucsModel, wave: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``(vocals, accompaniment)`` of a float32 mono 24 kHz waveform, each float32 mono 24 kHz of its length."""
    import torch
    from demucs.apply import apply_model

    model = demucs.model
    rate, channels = int(model.samplerate), int(model.audio_channels)
    x = np.asarray(wave, dtype=np.float32)
    if rate != CODEC_SAMPLE_RATE:
        x = soxr.resample(x, CODEC_SAMPLE_RATE, rate, quality="HQ").astype(np.float32)
    mix = torch.from_numpy(np.ascontiguousarray(np.repeat(x[None, :], channels, axis=0)))
    mean, std = mix.mean(), mix.std()
    scale = std if float(std) > 1e-8 else torch.tensor(1.0)
    with torch.inference_mode():
        stems = apply_model(model, ((mix - mean) / scale)[None], shifts=0, split=True, overlap=0.25,
                            progress=False, device=device)[0]
    stems = (stems * scale + mean).float().cpu().numpy()  # (sources, channels, frames)
    vocal = model.sources.index("vocals")
    vocals = stems[vocal]
    accompaniment = stems.sum(axis=0) - vocals
    out = []
    for stem in (vocals, accompaniment):
        mono = to_codec_rate(stem.T, rate)
        mono = mono[: len(wave)] if mono.shape[0] >= len(wave) else np.pad(mono, (0, len(wave) - mono.shape[0]))
        out.append(np.ascontiguousarray(mono, dtype=np.float32))
    return out[0], out[1]
