"""`uniaudio demo`: every stage of the data flow on mini corpora, through the commands users run.

corpora (real layouts) → ``ingest`` → ``shards build`` (tiny ReasoningCodec) → ``sentences build`` for every
task and every auditory-sentence strategy (``mixture`` with a tiny random HTDemucs for the stems,
``variation`` with the ``dsp`` backend; both re-tokenize new audio with the tiny codec) → ``train`` stages
1–4 (tiny model) →
``eval`` → ``DIR/report.md`` + ``DIR/report.html`` with plots.

Each step runs the real CLI command in this process (one embedded Ray for all of them; Ray's own lines go
to ``DIR/_logs/ray.log``). A second run reuses what is complete: ingest and shard builds resume by
themselves (nothing left to do), and a step whose output is complete (a store's ``index.json``, a stage's
``model.safetensors``, an evaluation's JSON) is reported as reused instead of being run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from uniaudio.demo.corpora import build_demo_corpora

__all__ = ["DemoConfig", "DemoError", "run_demo"]


class DemoError(RuntimeError):
    """A demo step failed (names the command)."""


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo run (small enough for a 2-core machine in a few minutes)."""

    workdir: Path
    train_steps: int = 24
    train_workers: int = 1
    max_tokens: int = 512
    seed: int = 0


# KIND -> (token stores it reads, extra options)
SENTENCE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "asr": (("librispeech",), ()),
    "tts": (("librispeech",), ()),
    "instruct-tts": (("capspeech",), ()),
    "speech-caption": (("capspeech",), ()),
    "tta": (("audiocaps",), ()),
    "audio-caption": (("audiocaps",), ()),
    "ttm": (("musiccaps",), ()),
    "music-caption": (("musiccaps",), ()),
    "lyric-recognition": (("songs",), ()),
    "lyric-to-song": (("songs",), ()),
    "audio-only": (("librilight", "audiocaps", "musiccaps"), ()),
    "text-only": ((), ()),
    "segment": (("librilight",), ()),
    "speech-text": (("librispeech",), ()),
    "audio-caption-interleave": (("audiocaps",), ()),
    "mixture": (("librispeech", "audiocaps", "musiccaps"), ("--codec", "tiny")),  # + --demucs-model
    "variation": (("librispeech",), ("--codec", "tiny", "--variation-backend", "dsp", "--variants", "2")),
}
STAGE_KINDS = {  # the stage recipes' task lists (uniaudio/train/recipes/stage*.yaml)
    1: ("asr", "audio-caption", "music-caption", "lyric-recognition", "speech-caption"),
    2: ("tts", "instruct-tts", "tta", "ttm", "lyric-to-song"),
    3: ("asr", "audio-caption", "music-caption", "lyric-recognition", "speech-caption",
        "tts", "instruct-tts", "tta", "ttm", "lyric-to-song", "text-only", "audio-only"),
    4: tuple(SENTENCE_KINDS),
}
# The recipes' schedules are for 50k-500k steps; a demo stage of a few dozen steps warms up at once, logs
# every step and uses small batches.
DEMO_OVERRIDES = ("schedule.warmup_steps=2", "log_every=1", "batch.tokens_per_step=4096", "context=512",
                  "optimizer.lr=2.0e-3")


@dataclass
class StepRecord:
    name: str
    status: str
    seconds: float


@dataclass
class DemoRun:
    """Paths of one demo run and what each step did."""

    config: DemoConfig
    console: Console
    invoke: Callable[[list[str]], object]
    """Runs one ``uniaudio`` command line in this process (the CLI's root command, ``standalone_mode=False``)."""
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.config.workdir

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def cli(self, *args: str) -> None:
        """Run one ``uniaudio`` command in this process, as a user would type it."""
        self.console.print(f"[bold cyan]$ uniaudio {' '.join(args)}[/bold cyan]")
        try:
            code = self.invoke(list(args))  # click returns the exit code of a command that exits early
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise DemoError(f"`uniaudio {' '.join(args)}` exited with {exc.code}") from exc
        except click.exceptions.Exit as exc:
            if exc.exit_code != 0:
                raise DemoError(f"`uniaudio {' '.join(args)}` exited with {exc.exit_code}") from exc
        except click.ClickException as exc:
            raise DemoError(f"`uniaudio {' '.join(args)}`: {exc.format_message()}") from exc
        if isinstance(code, int) and code != 0:
            raise DemoError(f"`uniaudio {' '.join(args)}` exited with {code}")

    def step(self, name: str, done: Callable[[], bool] | None, action: Callable[[], None]) -> None:
        """Run ``action`` unless ``done()`` says its output is complete (then it is reused)."""
        start = time.monotonic()
        if done is not None and done():
            self.console.print(f"[green]✓ {name}: reused (already complete)[/green]")
            self.steps.append(StepRecord(name, "reused", 0.0))
            return
        self.console.rule(f"[bold]{name}")
        action()
        self.steps.append(StepRecord(name, "ran", round(time.monotonic() - start, 1)))


def _complete(path: Path, marker: str = "index.json") -> Callable[[], bool]:
    return lambda: (path / marker).is_file()


def run_demo(config: DemoConfig, invoke: Callable[[list[str]], object], console: Console | None = None) -> DemoRun:
    """Run (or resume) the whole demo in ``config.workdir`` with ``invoke`` running each CLI command line;
    returns what each step did."""
    from uniaudio.core.ray_runtime import RayConfig, ensure_ray

    console = console or Console()
    run = DemoRun(config, console, invoke)
    run.root.mkdir(parents=True, exist_ok=True)
    ensure_ray(RayConfig(log_to=str(run.root)))
    corpora: dict[str, Path] = {}

    def make_corpora() -> None:
        corpora.update(build_demo_corpora(run.path("corpora")))

    run.step("corpora in their real layouts", None, make_corpora)
    _tokens(run, corpora)
    _sentences(run, corpora)
    _train(run)
    _evaluate(run)
    return run


def _tokens(run: DemoRun, corpora: dict[str, Path]) -> None:
    records = run.path("records", "librispeech")
    run.step("ingest librispeech → audio records", None,
             lambda: run.cli("ingest", "librispeech", str(corpora["librispeech"]), str(records)))
    builds = {
        "librispeech": ("records", str(records), ("--distill-features",)),
        "librilight": ("librilight", str(corpora["librilight"]), ("--window", "4")),
        "audiocaps": ("audiocaps", str(corpora["audiocaps"]), ()),
        "musiccaps": ("musiccaps", str(corpora["musiccaps"]), ()),
        "capspeech": ("capspeech", str(corpora["capspeech"]), ()),
        "songs": ("hf", str(corpora["songs"]), ("-o", "lyrics_column=lyrics", "-o", "id_column=id")),
    }
    for name, (source, src, extra) in builds.items():
        out = run.path("tokens", name)
        run.step(f"shards build {name}", None,
                 lambda source=source, src=src, out=out, extra=extra: run.cli(
                     "shards", "build", source, src, str(out), "--codec", "tiny", *extra))


def _sentences(run: DemoRun, corpora: dict[str, Path]) -> None:
    from uniaudio.testing.demucs_model import save_tiny_htdemucs

    demucs = run.path("models", "htdemucs-tiny.th")
    run.step("tiny random HTDemucs (music stems for mixture)", demucs.is_file, lambda: save_tiny_htdemucs(demucs))
    for kind, (stores, extra) in SENTENCE_KINDS.items():
        out = run.path("sentences", kind)
        args = ["sentences", "build", kind, str(out), "--max-tokens", str(run.config.max_tokens),
                "--seed", str(run.config.seed), *extra]
        for store in stores:
            args += ["--tokens", str(run.path("tokens", store))]
        if "songs" in stores:
            args += ["--pool", f"{run.path('tokens', 'songs')}=music"]
        if kind == "mixture":
            args += ["--demucs-model", str(demucs)]
        if kind == "text-only":
            args += ["--text", str(corpora.get("text") or run.path("corpora", "text", "corpus.jsonl")),
                     "--id-column", "id"]
        run.step(f"sentences build {kind}", _complete(out), lambda args=args: run.cli(*args))


def _train(run: DemoRun) -> None:
    previous: Path | None = None
    for stage, kinds in STAGE_KINDS.items():
        out = run.path("train", f"stage{stage}")
        args = ["train", "--stage", str(stage), "--model", "tiny", "--output", str(out),
                "--workers", str(run.config.train_workers), "--max-steps", str(run.config.train_steps),
                "--checkpoint-every", str(run.config.train_steps)]
        for override in DEMO_OVERRIDES:
            args += ["--set", override]
        for kind in kinds:
            if run.path("sentences", kind, "index.json").is_file():
                args += ["--data", str(run.path("sentences", kind))]
        if previous is not None:
            args += ["--init", str(previous)]
        run.step(f"train stage {stage}", _complete(out, "model.safetensors"), lambda args=args: run.cli(*args))
        previous = out


def _evaluate(run: DemoRun) -> None:
    from uniaudio.testing.asr_model import save_tiny_ctc_asr

    model = str(run.path("train", "stage4"))
    asr_model = run.path("models", "asr")
    run.step("tiny random ASR model (scores the decoded speech of eval tts)", _complete(asr_model, "config.json"),
             lambda: save_tiny_ctc_asr(asr_model))
    evals = {
        "tokens-asr": ("tokens", "asr", ()),
        "tokens-tts": ("tokens", "tts", ()),
        "asr": ("asr", "asr", ("--max-new-tokens", "24")),
        "tts": ("tts", "tts", ("--codec", "tiny", "--limit", "3", "--wav-dir", str(run.path("eval", "wavs")),
                               "--asr-model", str(asr_model))),
    }
    for name, (kind, store, extra) in evals.items():
        out = run.path("eval", f"{name}.json")
        run.step(f"eval {name}", out.is_file,
                 lambda kind=kind, store=store, extra=extra, out=out: run.cli(
                     "eval", kind, "--model", model, "--data", str(run.path("sentences", store)),
                     "--out", str(out), *extra))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
