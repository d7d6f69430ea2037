#!/usr/bin/env bash
# Bring the virtual environment at $1 (default .venv) up to date with pyproject.toml.
#
# CPU-only machine (no nvidia-smi): torch is pinned to the local CPU wheel through
# constraints-cpu.txt; torchaudio's PyPI wheel is a CUDA build, so it is installed without
# dependencies and its compiled extensions are removed (its pure-torch DSP keeps working);
# DeepSpeed is installed with DS_BUILD_OPS=0 and its shared-memory comm op is prebuilt once.
# GPU machine: plain `pip install -e .[test]` against the CUDA torch already present.
set -euo pipefail
venv="${1:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check -q)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "${pip[@]}" -e '.[test]'
  exit 0
fi

export DS_BUILD_OPS=0
"${pip[@]}" -c constraints-cpu.txt torch numpy
if ! "$py" -c "import torchaudio" >/dev/null 2>&1; then
  "${pip[@]}" --no-deps torchaudio==2.11.0
  site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  rm -f "$site"/torchaudio/lib/*.so
  "$py" -c "import torchaudio" # fails loudly if the CPU workaround stopped working
fi
"${pip[@]}" -c constraints-cpu.txt -e '.[test]'
# DeepSpeed JIT-builds its CPU shared-memory op on first use (about a minute): build it now, once.
DS_ACCELERATOR=cpu "$py" - <<'PY'
from deepspeed.accelerator import get_accelerator
get_accelerator().create_op_builder("ShareMemCommBuilder").load(verbose=False)
PY
