#!/usr/bin/env bash
# README command 1: the bundled sample end to end (examples/sample/run.sh: the paper's protocol,
# translate-train-all, on XQuAD's English, German, Chinese and Arabic) from a checkout.  Creates
# .venv/ and installs the project there if its commands are not found (BIN: where they are; the
# test suite passes its own); writes OUT (default sample-run, in the repository's root).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
if [ ! -x "$BIN/grafusion-preprocess" ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q torch==2.13.0  # the CPU build, first (as the README's test command)
  .venv/bin/pip install -q -e .
  BIN=$PWD/.venv/bin
fi
export PATH="$BIN:$PATH"
exec bash examples/sample/run.sh
