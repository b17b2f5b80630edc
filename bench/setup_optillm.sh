#!/usr/bin/env bash
# Install optillm 0.4.0 for bench/peer_optillm.py, outside .venv and outside the repo.
#
# optillm declares ~40 dependencies (torch, transformers<5.13, gradio, spacy, litellm,
# google-cloud-aiplatform, ...) for approaches and local inference this benchmark does not
# use. Its proxy server (`optillm --approach bon`) imports only the packages below on top
# of what .venv already has (openai, httpx, numpy, networkx, torch, transformers), so they
# go, without their own dependencies, into a directory that the benchmark puts on
# PYTHONPATH for the optillm process only.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${OPTILLM_HOME:-$HOME/.cache/selfcritic/optillm-0.4.0}"
if PYTHONPATH="$TARGET" HF_HUB_OFFLINE=1 .venv/bin/python -c "import optillm" 2>/dev/null; then
    echo "optillm already importable from $TARGET"
    exit 0
fi
.venv/bin/pip install --quiet --no-deps --target "$TARGET" \
    optillm==0.4.0 flask werkzeug blinker itsdangerous cerebras_cloud_sdk distro \
    z3-solver math-verify latex2sympy2_extended antlr4-python3-runtime==4.13.2
PYTHONPATH="$TARGET" HF_HUB_OFFLINE=1 .venv/bin/python -c "import optillm; print('optillm', optillm.__version__, 'in', '$TARGET')"
