#!/usr/bin/env bash
# Bring the virtual environment at $1 (default .venv) up to date with requirements-cpu.lock.
#
# CPU-only machine (no nvidia-smi): install exactly the locked versions, with no resolver run:
#   1. uv (pinned in scripts/uv-version) into the venv with pip;
#   2. torch from the lock with pip, so pip's own configuration picks the local CPU wheel
#      (find-links / a CPU index) and no CUDA build is ever downloaded;
#   3. everything else from the lock with `uv pip install --no-deps` (no resolution, seconds);
#      DeepSpeed builds with DS_BUILD_OPS=0 against the venv's torch (no build isolation);
#   4. torchaudio's PyPI wheel is a CUDA build: its compiled extensions are removed (its pure-torch
#      DSP keeps working), and DeepSpeed's shared-memory comm op is prebuilt once.
# System program: espeak-ng (the `variation` sentence strategy's espeak backend) from Debian's packages,
# installed when missing and apt-get is usable (root); otherwise set-up says how to install it.
# JIT-built torch ops live in <venv>/torch-extensions ($TORCH_EXTENSIONS_DIR, as the Makefile sets it). A process
# killed while loading such an op leaves a `lock` file behind, and every later load waits on it forever:
# set-up is the only user of the venv's folder while it runs, so it removes leftovers before building.
# Every step that reaches the network or a compiler has a time limit, so a stalled mirror fails set-up
# with a message instead of hanging it.
# A lock older than pyproject.toml / constraints-cpu.txt is refused: run `make lock`.
# GPU machine: plain `pip install -e .[test]` against the CUDA torch already present.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
lock=requirements-cpu.lock

if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing espeak-ng (Debian package) ..."
    if ! { timeout 600 apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq espeak-ng >/dev/null; }; then
      echo "warning: installing espeak-ng failed or took over 10 minutes; the espeak tests will fail" >&2
      echo "         until it is installed (sudo apt-get install espeak-ng)." >&2
    fi
  else
    echo "note: espeak-ng is not installed; 'sentences build variation --variation-backend espeak' needs it" >&2
    echo "      (Debian/Ubuntu: sudo apt-get install espeak-ng)." >&2
  fi
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]'
  exit 0
fi

want=$(bash scripts/lock_inputs_hash.sh)
have=$(sed -n 's/^# input-hash: //p' "$lock")
if [ "$want" != "$have" ]; then
  echo "error: $lock is out of date with pyproject.toml / constraints-cpu.txt (hash $have, expected $want)." >&2
  echo "       Run 'make lock' to re-resolve the pinned versions, then commit $lock." >&2
  exit 1
fi
lockpy=$(sed -n 's/^# python: //p' "$lock")
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$pyver" != "$lockpy" ]; then
  echo "error: $lock was resolved for CPython $lockpy, but $venv runs $pyver." >&2
  echo "       Use python$lockpy (rm -rf $venv), or re-lock for this Python with 'make lock'." >&2
  exit 1
fi

pip=(timeout 1200 "$py" -m pip install --disable-pip-version-check -q)
"${pip[@]}" "uv==$(cat scripts/uv-version)"
uv=(timeout 1200 "$venv/bin/uv" pip install --python "$py" --no-deps --quiet)

torch_pin=$(grep -E '^torch==' "$lock" | sed 's/+cpu//')
"${pip[@]}" --no-deps "$torch_pin"

rest=$(mktemp)
trap 'rm -f "$rest"' EXIT
grep -vE '^(torch|deepspeed)==' "$lock" >"$rest"
"${uv[@]}" -r "$rest"
DS_BUILD_OPS=0 "${uv[@]}" --no-build-isolation "$(grep -E '^deepspeed==' "$lock")"

site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -f "$site"/torchaudio/lib/*.so
"$py" -c "import torchaudio" # fails loudly if the CPU workaround stopped working

"${uv[@]}" -e .
# DeepSpeed JIT-builds its CPU shared-memory op on first use (about a minute): build it now, once.
export TORCH_EXTENSIONS_DIR="$(cd "$venv" && pwd)/torch-extensions"
find "$TORCH_EXTENSIONS_DIR" -name lock -type f -print -delete 2>/dev/null | sed 's/^/removed a stale op-build lock: /' || true
DS_ACCELERATOR=cpu timeout 1200 "$py" - <<'PY'
from deepspeed.accelerator import get_accelerator
get_accelerator().create_op_builder("ShareMemCommBuilder").load(verbose=False)
PY
