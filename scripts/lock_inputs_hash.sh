#!/usr/bin/env bash
# The hash that ties requirements-cpu.lock to the files it was resolved from.
set -euo pipefail
cd "$(dirname "$0")/.."
cat pyproject.toml constraints-cpu.txt scripts/uv-version | sha256sum | cut -c1-16
