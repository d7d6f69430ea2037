"""Forward+backward throughput of the UniAudio model against a plain LLaMA of its cross-modal size.

Both models run the same batch shape (B sequences of T steps) in the same process; the script prints
tokens/s, achieved TFLOP/s, model FLOP utilisation and the UniAudio/LLaMA step-time ratio. The FLOP ratio
(the overhead the extra experts and the local decoder would cost at equal efficiency) is printed beside it,
so implementation overhead and architectural cost can be told apart.

MFU = model FLOP/s / peak FLOP/s. The peak is ``--peak-tflops`` if given, else the dense bf16 peak of a
known GPU, else (CPU) a dense fp32 matmul measured in this run.

Examples:
    python bench/model_bench.py --config tiny --device cpu
    python bench/model_bench.py --config cpu-mid --device cpu --seq-len 512
    python bench/model_bench.py --config 1b --device cuda --seq-len 2048 --batch 4
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from transformers import LlamaForCausalLM

from uniaudio.core.token_space import AudioTokens, TextTokens, TokenLayout
from uniaudio.model.config import StackConfig, UniAudioConfig, preset
from uniaudio.model.flops import batch_flops, stack_forward_flops
from uniaudio.model.losses import compute_loss
from uniaudio.model.network import UniAudioModel
from uniaudio.model.sequence import AudioSegment, Batch, TextSegment, build_sequence, collate

GPU_PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def cpu_mid() -> UniAudioConfig:
    """A CPU-sized model with roughly the 1b preset's proportions (experts, local decoder, audio head)."""
    body = StackConfig(n_layers=8, d_model=256, n_heads=8, n_kv_heads=2, d_ff=1024)
    return UniAudioConfig(
        name="cpu-mid", understanding=replace(body, n_layers=2), cross_modal=body,
        generation=replace(body, n_layers=1), local_decoder=replace(body, n_layers=2),
        text_vocab_size=4096,
        tokens=TokenLayout(audio=AudioTokens.standard(256, 512), text=TextTokens(special_base=4000)),
    )


def make_batch(config: UniAudioConfig, batch: int, seq_len: int, audio_fraction: float, seed: int) -> Batch:
    """B sequences of exactly ``seq_len`` steps: a text segment then one audio item (5:12.5 frames), all
    scored, ``audio_fraction`` of the steps audio."""
    g = torch.Generator().manual_seed(seed)
    a, t = config.tokens.audio, config.tokens.text
    n_audio = int(seq_len * audio_fraction)
    n_text = seq_len - n_audio
    seqs = []
    for _ in range(batch):
        segs = []
        if n_text >= 2:
            segs.append(TextSegment(torch.randint(0, t.special_base, (n_text - 2,), generator=g).tolist(), loss=True))
        if n_audio >= 4:
            frames = n_audio - 4
            t_r = round(frames * 5 / 17.5)
            segs.append(AudioSegment(torch.randint(0, a.reason_codebook_size, (a.n_codebooks, t_r), generator=g),
                                     torch.randint(0, a.recon_codebook_size, (a.n_codebooks, frames - t_r),
                                                   generator=g), loss=True))
        seqs.append(build_sequence(segs, config.tokens))
    return collate(seqs, pad_to=seq_len)


def llama_flops(config: UniAudioConfig, batch: int, seq_len: int) -> float:
    """Forward+backward FLOPs of the plain LLaMA baseline: its layers, causal attention and LM head."""
    n_tok = batch * seq_len
    fwd = stack_forward_flops(config.cross_modal, n_tok, batch * seq_len * (seq_len + 1) / 2)
    return 3 * (fwd + 2 * config.cross_modal.d_model * config.text_vocab_size * n_tok)


def _timed(step: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_interleaved(steps: dict[str, Callable[[], object]], n: int, warmup: int,
                     device: torch.device) -> dict[str, float]:
    """Median seconds per call of each step, calls interleaved so load changes hit all alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n):
        for name, step in steps.items():
            times[name].append(_timed(step, device))
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def peak_tflops(device: torch.device, given: float | None) -> tuple[float, str]:
    if given is not None:
        return given, "given"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in GPU_PEAK_BF16_TFLOPS.items():
            if key in name:
                return value, f"{name} dense bf16 spec"
        raise SystemExit(f"unknown GPU {name!r}: pass --peak-tflops")
    n = 1024
    x, y = torch.randn(n, n), torch.randn(n, n)
    sec = time_interleaved({"matmul": lambda: x @ y}, n=20, warmup=3, device=device)["matmul"]
    return 2 * n**3 / sec / 1e12, "measured fp32 1024^3 matmul"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="tiny, 1b, 3b or cpu-mid")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--audio-fraction", type=float, default=0.8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in both models")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--attention", default="sdpa", choices=["sdpa", "flex"],
                   help="kernel of the UniAudio sequence stacks (flex: GPU, block mask)")
    args = p.parse_args()

    device = torch.device(args.device)
    config = cpu_mid() if args.config == "cpu-mid" else preset(args.config)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    torch.manual_seed(0)
    model = UniAudioModel(config).to(device).train()
    model.set_attention(args.attention)
    llama = LlamaForCausalLM(config.cross_modal.to_llama_config(config.text_vocab_size)).to(device).train()
    if args.grad_ckpt:
        model.set_gradient_checkpointing(True)
        llama.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    batch = make_batch(config, args.batch, args.seq_len, args.audio_fraction, seed=0).to(device)
    ids = torch.randint(0, config.text_vocab_size, (args.batch, args.seq_len), device=device)

    def ua_step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = compute_loss(model(batch), batch, config.loss, config.tokens.audio).total
        loss.backward()

    def llama_step() -> None:
        llama.zero_grad(set_to_none=True)
        with autocast:
            loss = llama(input_ids=ids, labels=ids).loss
        loss.backward()

    timed = time_interleaved({"llama": llama_step, "uniaudio": ua_step}, args.steps, args.warmup, device)
    t_llama, t_ua = timed["llama"], timed["uniaudio"]
    peak, peak_src = peak_tflops(device, args.peak_tflops)
    tokens = args.batch * args.seq_len
    f_ua, f_llama = batch_flops(config, batch), llama_flops(config, args.batch, args.seq_len)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"config={config.name} device={device} ({where}) batch={args.batch} seq_len={args.seq_len} "
          f"audio_fraction={args.audio_fraction} grad_ckpt={args.grad_ckpt} attention={args.attention}")
    print(f"params: uniaudio {sum(x.numel() for x in model.parameters()) / 1e6:.1f} M, "
          f"llama {sum(x.numel() for x in llama.parameters()) / 1e6:.1f} M; peak {peak:.3f} TFLOP/s ({peak_src})")
    for name, sec, flops in (("llama", t_llama, f_llama), ("uniaudio", t_ua, f_ua)):
        print(f"{name:9s} step {sec * 1e3:9.1f} ms  {tokens / sec:10.0f} tokens/s  "
              f"{flops / sec / 1e12:8.4f} TFLOP/s  MFU {flops / sec / 1e12 / peak:6.1%}")
    print(f"uniaudio/llama: time x{t_ua / t_llama:.3f} (overhead {t_ua / t_llama - 1:+.1%}), "
          f"FLOPs x{f_ua / f_llama:.3f}, MFU ratio {(f_ua / t_ua) / (f_llama / t_llama):.3f}")


if __name__ == "__main__":
    main()
