#!/usr/bin/env bash
# LiteLLM's proxy for the gateway test (tests/integration/test_litellm_gateway.py), in a
# venv of its own (its pins conflict with vLLM's): deploy/litellm/requirements.txt, ~1 min
# the first time, a no-op after. `make test` runs it; `make serve` does not need it.
# Without PyPI it is left out with a warning and the gateway test skips (fails under CI);
# SELFCRITIC_SKIP_LITELLM=1 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
litellm_stamp=.venv-litellm/.selfcritic-setup
litellm_want=$(sha256sum deploy/litellm/requirements.txt | cut -c1-16)
if [[ ${SELFCRITIC_SKIP_LITELLM:-0} != 1 && ! ( -f $litellm_stamp &&
      $(cat "$litellm_stamp") == "$litellm_want" ) ]]; then
  printf '\n==> %s\n' "Installing LiteLLM's proxy into .venv-litellm (gateway test)"
  if { [[ -x .venv-litellm/bin/python ]] || "$PYTHON" -m venv .venv-litellm; } &&
     .venv-litellm/bin/python -m pip --disable-pip-version-check install --progress-bar off \
       -q -r deploy/litellm/requirements.txt; then
    echo "$litellm_want" > "$litellm_stamp"
  else
    echo "setup: warning: could not install LiteLLM (PyPI unreachable?); the gateway test" \
         "will skip" >&2
  fi
fi

