#!/usr/bin/env bash
# The main job end to end on the embedded default (local Ray on 127.0.0.1, local files, tiny models):
#   tiny corpora in their real layouts → ingest (audio records) → shards build (tiny ReasoningCodec →
#   token store) → validate / stats / inspect → decode tokens to audio → text-only sentences →
#   an initial tiny UniAudio model checkpoint.
# Everything lands in demo-out/ (removed first). Usage: scripts/demo.sh [VENV]
set -euo pipefail
venv="${1:-.venv}"
u="$venv/bin/uniaudio"
py="$venv/bin/python"
out=demo-out
rm -rf "$out"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the sources and the layouts they read"
"$u" sources list

step "tiny corpora in their distributed layouts (with the traps the real ones have)"
"$u" sources fixtures "$out/corpora" -s librispeech -s emilia -s audioset -s manifest

step "ingest: dry run from metadata, then decode + filter into audio records"
"$u" ingest emilia "$out/corpora/emilia/emilia" "$out/records/emilia" --dry-run
"$u" ingest emilia "$out/corpora/emilia/emilia" "$out/records/emilia"
"$u" ingest emilia "$out/corpora/emilia/emilia" "$out/records/emilia"   # re-run: resumes, nothing redone

step "shards build: audio records → tiny ReasoningCodec → token store (and straight from a corpus)"
"$u" shards build records "$out/records/emilia" "$out/tokens/emilia" --codec tiny
"$u" shards build librispeech "$out/corpora/librispeech/LibriSpeech" "$out/tokens/librispeech" --codec tiny
"$u" shards build audioset "$out/corpora/audioset/AudioSet" "$out/tokens/audioset" --codec tiny --distill-features

step "check and look at the stores"
for store in emilia librispeech audioset; do "$u" shards validate "$out/tokens/$store"; done
"$u" shards stats "$out/tokens/audioset" --plot "$out/audioset-durations.png"
key=$("$py" -c "import sys; from uniaudio.pipelines.token_store import iter_store; print(next(iter_store(sys.argv[1])).key)" "$out/tokens/librispeech")
"$u" shards inspect "$out/tokens/librispeech" "$key"

step "decode reconstruction tokens back to 24 kHz audio (tiny random codec: noise-like, right length)"
"$u" codec decode "$out/tokens/librispeech" "$out/decoded" --keys "$key"

step "text-only sentences from a JSONL corpus (a tiny tokenizer trained here stands in for LLaMA-3.2)"
"$py" - "$out" <<'PY'
import json, sys
from pathlib import Path
from uniaudio.tokenize.text_tokenizer import train_tiny_tokenizer
out = Path(sys.argv[1])
docs = [{"id": f"doc{i}", "text": f"Document {i}. " + "The quick brown fox jumps over the lazy dog. " * (5 + 20 * i)}
        for i in range(3)]
(out / "text").mkdir(parents=True, exist_ok=True)
(out / "text" / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
train_tiny_tokenizer((d["text"] for d in docs), out / "text" / "tokenizer")
PY
"$u" sentences build text-only "$out/sentences/text" --text "$out/text/corpus.jsonl" \
    --tokenizer "$out/text/tokenizer" --id-column id --max-tokens 128

step "an initial tiny UniAudio 2.0 checkpoint, and its parameter groups"
"$u" model init --config tiny "$out/model/init"
"$u" model info "$out/model/init"

step "done: outputs are in $out/"
ls "$out"
