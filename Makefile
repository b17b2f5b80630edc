# The two commands a newcomer needs: `make serve` and `make test`. Both set up first.
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
ARGS ?=

.PHONY: setup setup-litellm serve test test-fast lint container-check
setup:  ## build .venv (idempotent)
	@bash scripts/setup.sh

setup-litellm:  ## build .venv-litellm, LiteLLM's proxy for the gateway test (idempotent)
	@bash scripts/setup_litellm.sh

serve: setup  ## set up, then serve the default model on http://127.0.0.1:8000
	.venv/bin/selfcritic serve $(ARGS)

test: setup setup-litellm  ## set up, then run lint and every test (unit + real-engine integration)
	.venv/bin/ruff check .
	OMP_WAIT_POLICY=PASSIVE .venv/bin/pytest $(ARGS)

test-fast: setup  ## unit tests only (no vLLM server)
	.venv/bin/pytest -m "not integration" $(ARGS)

lint: setup
	.venv/bin/ruff check .

container-check: setup  ## build and run the CPU image with podman (slow; see deploy/README.md)
	SELFCRITIC_CONTAINER_CHECK=1 bash scripts/container_check.sh
