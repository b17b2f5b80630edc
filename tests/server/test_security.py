"""Secure by default: keys (flag and file) checked before the body, closed docs, no slash
redirects, trusted proxies only, the container's health check, drain and stall limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import ValidationError

from critic_loop.engine import EngineProgress
from critic_loop.engines.scripted import ScriptedEngine
from server.app import create_app
from server.edge.auth import APIKeyChecker, UnsafeExposureError, check_exposure, is_loopback
from server.edge.keys import configured_keys, read_key_file
from server.load.engine_stall import StallDetector
from server.runner import EXIT_BAD_CONFIG, _DrainingServer, serve, stop_leftover_processes, uvicorn_config
from server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SELFCRITIC_API_KEY", "SELFCRITIC_API_KEY_FILE", "SELFCRITIC_HOST",
                 "SELFCRITIC_ALLOW_UNAUTHENTICATED", "SELFCRITIC_FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)


# -- refusing to serve a public address without a key -------------------------------------
@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("10.1.2.3", False), ("example.com", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_public_host_without_key_is_refused() -> None:
    settings = ServerSettings(host="0.0.0.0")
    with pytest.raises(UnsafeExposureError, match="--allow-unauthenticated"):
        check_exposure(settings, APIKeyChecker.from_settings(settings))
    # serve() gives up before any engine or socket exists
    assert serve(settings) == EXIT_BAD_CONFIG


@pytest.mark.parametrize("settings", [
    {"host": "127.0.0.1"}, {"host": "0.0.0.0", "allow_unauthenticated": True}])
def test_serving_without_key_is_logged(settings: dict, caplog: pytest.LogCaptureFixture) -> None:
    config = ServerSettings(**settings)
    with caplog.at_level(logging.WARNING, logger="server.edge.auth"):
        check_exposure(config, APIKeyChecker.from_settings(config))
    assert "WITHOUT an API key" in caplog.text


def test_public_host_with_key_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    settings = ServerSettings(host="0.0.0.0", api_key=[KEY])
    with caplog.at_level(logging.WARNING, logger="server.edge.auth"):
        check_exposure(settings, APIKeyChecker.from_settings(settings))
    assert not caplog.records


# -- keys from a file ----------------------------------------------------------------------
def test_key_file(tmp_path: Path, make_client) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# rotated 2026-11\nfile-key-1\n\n  file-key-2  \n# old-key\n")
    assert read_key_file(str(key_file)) == ["file-key-1", "file-key-2"]
    assert configured_keys(["flag-key", "file-key-1"], str(key_file)) == [
        "flag-key", "file-key-1", "file-key-2"]
    client = make_client(api_key=["flag-key"], api_key_file=str(key_file))
    for key in ("flag-key", "file-key-1", "file-key-2"):
        response = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, key
    for header in ({}, {"Authorization": "Bearer old-key"}, {"Authorization": "Bearer # old-key"}):
        assert client.get("/v1/models", headers=header).status_code == 401


def test_key_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("env-file-key\n")
    monkeypatch.setenv("SELFCRITIC_API_KEY_FILE", str(key_file))
    assert APIKeyChecker.from_settings(ServerSettings()).enabled


@pytest.mark.parametrize("content", [None, "", "# only a comment\n\n"])
def test_missing_or_empty_key_file_stops_start_up(tmp_path: Path, content: str | None) -> None:
    key_file = tmp_path / "keys"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(ValueError, match="key file"):
        read_key_file(str(key_file))
    assert serve(ServerSettings(api_key_file=str(key_file))) == EXIT_BAD_CONFIG


# -- the key is checked before the body is read -------------------------------------------
async def _asgi_post(app, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bool]:
    """POST through the ASGI app by hand; return the status and whether the body was read."""
    read = False
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        if read:  # the client stays connected until the response is sent
            await asyncio.Event().wait()
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
             "raw_path": b"/v1/chat/completions", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"selfcritic"), (b"content-type", b"application/json"),
                         *headers],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)
    return sent[0]["status"], read


async def test_key_is_checked_before_the_body_is_read() -> None:
    app = create_app(ServerSettings(api_key=[KEY], max_body_bytes=4096),
                     engine=ScriptedEngine(model_name="tiny"))
    body = b'{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}'
    async with app.router.lifespan_context(app):
        assert await _asgi_post(app, [], body) == (401, False)
        assert await _asgi_post(app, [(b"authorization", b"Bearer wrong")], body) == (401, False)
        # a declared size over the limit is still a 401 to a client without the key
        huge = [(b"content-length", b"999999999")]
        assert await _asgi_post(app, huge, body) == (401, False)
        assert await _asgi_post(app, [*huge, (b"authorization", AUTH["Authorization"].encode())],
                                body) == (413, False)
        assert await _asgi_post(app, [(b"authorization", AUTH["Authorization"].encode())],
                                body) == (200, True)


def test_401_is_openai_shaped_with_request_id(make_client) -> None:
    client = make_client(api_key=[KEY])
    response = client.post("/v1/chat/completions", json=BODY, headers={"X-Request-Id": "abc-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "abc-1"
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"


# -- docs, schema and version behind the key ----------------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/version", "/v1/models",
                                  "/no/such/route"])
def test_everything_but_probes_needs_the_key(make_client, path: str) -> None:
    client = make_client(api_key=[KEY])
    assert client.get(path).status_code == 401
    assert client.get(path, headers=AUTH).status_code == (404 if path == "/no/such/route" else 200)


def test_probes_stay_open_unless_protected(make_client) -> None:
    open_client = make_client(api_key=[KEY])
    assert open_client.get("/health").status_code == 200
    assert open_client.get("/metrics").status_code == 200
    closed = make_client(api_key=[KEY], protect_health=True)
    assert closed.get("/health").status_code == 401
    assert closed.get("/metrics").status_code == 401


def test_cors_preflight_needs_no_key_and_401_carries_cors(make_client) -> None:
    client = make_client(api_key=[KEY], cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    preflight = client.options("/v1/chat/completions", headers={
        **origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    denied = client.post("/v1/chat/completions", json=BODY, headers=origin)
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "https://app.example"


# -- no slash redirects --------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/chat/completions/"), ("POST", "/v1/critique/"), ("GET", "/health/"),
    ("GET", "/version/")])
def test_trailing_slash_is_a_404_never_a_redirect(make_client, method: str, path: str) -> None:
    client = make_client(api_key=[KEY])
    assert client.request(method, path, json=BODY, follow_redirects=False).status_code == 401
    response = client.request(method, path, json=BODY, headers=AUTH, follow_redirects=False)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


# -- forwarded headers only from trusted proxies ------------------------------------------
async def _client_seen(settings: ServerSettings, peer: str) -> tuple[str, str]:
    seen: dict = {}

    async def app(scope, receive, send) -> None:
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    config = uvicorn_config(app, settings)
    config.load()
    scope = {"type": "http", "scheme": "http", "client": (peer, 4000), "path": "/",
             "headers": [(b"x-forwarded-for", b"203.0.113.9"),
                         (b"x-forwarded-proto", b"https")]}
    await config.loaded_app(scope, None, None)
    return seen["client"], seen["scheme"]


async def test_forwarded_headers_are_ignored_by_default() -> None:
    assert await _client_seen(ServerSettings(), "127.0.0.1") == ("127.0.0.1", "http")


async def test_forwarded_headers_only_from_allowed_proxies() -> None:
    settings = ServerSettings(forwarded_allow_ips="10.0.0.0/8, 192.168.1.7")
    assert settings.forwarded_allow_ips == ["10.0.0.0/8", "192.168.1.7"]
    assert await _client_seen(settings, "10.2.3.4") == ("203.0.113.9", "https")
    assert await _client_seen(settings, "198.51.100.1") == ("198.51.100.1", "http")


def test_forwarded_allow_ips_are_checked() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        ServerSettings(forwarded_allow_ips="gateway")


# -- a live server: health check script, drain -------------------------------------------
@dataclass
class LiveServer:
    url: str
    port: int
    server: _DrainingServer
    thread: threading.Thread


@contextlib.contextmanager
def live_server(engine: ScriptedEngine, **settings: object) -> Iterator[LiveServer]:
    """The real runner's uvicorn server on a free loopback port, in a thread."""
    config = ServerSettings(port=0, **settings)
    server = _DrainingServer(uvicorn_config(create_app(config, engine=engine), config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port, server, thread)
    finally:
        server.should_exit = True
        thread.join(30)


def _healthcheck(port: int, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SELFCRITIC_")}
    environ.update(SELFCRITIC_PORT=str(port), PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, str(REPO / "scripts/container/healthcheck.py")],
                          env=environ, capture_output=True, timeout=60).returncode


def test_container_healthcheck_sends_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# the gateway's key\nfile-key\n")
    with live_server(ScriptedEngine(model_name="tiny"), api_key=[KEY],
                     api_key_file=str(key_file), protect_health=True) as live:
        assert _healthcheck(live.port) == 1  # no key: 401
        assert _healthcheck(live.port, SELFCRITIC_API_KEY=f"{KEY},other") == 0
        assert _healthcheck(live.port, SELFCRITIC_API_KEY_FILE=str(key_file)) == 0
        assert _healthcheck(live.port, SELFCRITIC_API_KEY="wrong") == 1


def _post_in_thread(url: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def post() -> None:
        try:
            result["response"] = httpx.post(url + "/v1/chat/completions", json=BODY, timeout=60)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, result


def _wait_running(engine: ScriptedEngine) -> None:
    deadline = time.monotonic() + 10
    while not engine.running:
        assert time.monotonic() < deadline, "the request never reached the engine"
        time.sleep(0.02)


def test_drain_zero_aborts_in_flight_requests_at_once() -> None:
    # One token per 30 s: finishing the request would take minutes.
    engine = ScriptedEngine(model_name="tiny", token_delay_s=30)
    with live_server(engine, shutdown_drain_s=0) as live:
        request, result = _post_in_thread(live.url)
        _wait_running(engine)
        live.server.should_exit = True  # what SIGTERM does
        live.thread.join(20)
        assert not live.thread.is_alive(), "the server waited for the request"
        request.join(20)
    assert engine.aborted and not engine.running
    assert "response" not in result or result["response"].status_code != 200


def test_drain_lets_in_flight_requests_finish() -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=0.2)
    with live_server(engine, shutdown_drain_s=30) as live:
        request, result = _post_in_thread(live.url)
        _wait_running(engine)
        live.server.should_exit = True
        request.join(30)
    assert result["response"].status_code == 200
    assert not engine.aborted


# -- /health fails on a hung engine -------------------------------------------------------
class _ProgressingEngine:
    def __init__(self) -> None:
        self.snapshot = EngineProgress(outputs=0, in_flight=0)

    def progress(self) -> EngineProgress:
        return self.snapshot


def test_stall_detector() -> None:
    engine, now = _ProgressingEngine(), [0.0]
    detector = StallDetector(engine, stall_s=10, clock=lambda: now[0])  # type: ignore[arg-type]

    def at(t: float, outputs: int, in_flight: int) -> bool:
        now[0], engine.snapshot = t, EngineProgress(outputs, in_flight)
        return detector.stalled()

    assert not at(100, 0, 0)            # idle for long: healthy
    assert not at(105, 0, 2)            # turned busy
    assert not at(114, 0, 2)
    assert at(115, 0, 2)                # 10 s busy without output
    assert not at(116, 1, 2)            # progress again
    assert not at(125, 1, 2)
    assert at(126.5, 1, 2)
    assert not at(127, 1, 0)            # the stuck work was aborted: idle again
    assert not at(200, 1, 1)            # busy again after idling: a fresh start
    assert not StallDetector(engine, stall_s=0).stalled()  # type: ignore[arg-type]
    assert not StallDetector(object(), stall_s=1).enabled  # type: ignore[arg-type]


async def test_health_is_503_while_the_engine_is_stalled(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=600)  # accepts work, never answers
    client = await make_async_client(engine, engine_stall_s=0.2, request_timeout_s=3)
    await asyncio.sleep(0.5)
    assert (await client.get("/health")).status_code == 200  # idle is healthy
    stuck = asyncio.create_task(client.post("/v1/chat/completions", json=BODY))
    health = None
    for _ in range(100):
        await asyncio.sleep(0.05)
        health = await client.get("/health")
        if health.status_code != 200:
            break
    assert health is not None and health.status_code == 503
    assert health.json()["status"] == "stalled" and health.headers["retry-after"]
    assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 503
    assert (await stuck).status_code == 504  # the deadline aborts the stuck work
    assert not engine.running
    assert (await client.get("/health")).status_code == 200


async def test_busy_engine_that_progresses_stays_healthy(make_async_client) -> None:
    # 60 tokens, one per 50 ms: busy for 3 s, three times the stall limit, never silent
    engine = ScriptedEngine(lambda request, index: "word " * 60, model_name="tiny",
                            token_delay_s=0.05)
    client = await make_async_client(engine, engine_stall_s=1.0)
    statuses = []
    streaming = asyncio.create_task(client.post("/v1/chat/completions", json={
        **BODY, "stream": True, "max_tokens": 64}))
    while not streaming.done():
        statuses.append((await client.get("/health")).status_code)
        await asyncio.sleep(0.05)
    assert (await streaming).status_code == 200
    assert len(statuses) > 20 and set(statuses) == {200}


# -- the process tree exits ----------------------------------------------------------------
def test_leftover_processes_are_stopped_but_the_resource_tracker() -> None:
    # A parent with two children, as vLLM's engine core leaves its worker behind; one of
    # them looks like multiprocessing's resource tracker, which must be left to exit alone.
    parent = subprocess.Popen(
        ["sh", "-c", f"sleep 120 & {sys.executable} -c 'import time; time.sleep(120)' "
                     "multiprocessing.resource_tracker & wait"])
    try:
        deadline = time.monotonic() + 10
        # until both children have exec'd (a forked child still carries sh's command line)
        while sorted(_exec_names(parent.pid)) != ["python", "sleep"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        children = psutil.Process(parent.pid).children()
        stopped = stop_leftover_processes(parent.pid, grace_s=5)
        assert len(stopped) == 1 and "sleep" in stopped[0]
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert len(alive) == 1 and "resource_tracker" in " ".join(alive[0].cmdline())
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()


def _exec_names(pid: int) -> list[str]:
    names = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            first = os.path.basename(child.cmdline()[0])
            names.append("python" if first.startswith("python") else first)
    return names


# -- the compose file keeps its promises ---------------------------------------------------
def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number = duration.rstrip("mhs")
    return float(number) * units[duration[len(number):]]


@pytest.mark.parametrize("override", [None, "compose.gpu.yaml"])
def test_compose_stops_after_the_drain_and_takes_keys_from_a_secret(override: str | None) -> None:
    yaml = pytest.importorskip("yaml")
    service: dict = {}
    for name in ("compose.yaml", override):  # an override may only add to the service
        if name:
            service.update(yaml.safe_load((REPO / "deploy" / name).read_text())
                           ["services"]["selfcritic"])
    environment = service["environment"]
    drain = float(environment.get("SELFCRITIC_SHUTDOWN_DRAIN_S",
                                  ServerSettings.model_fields["shutdown_drain_s"].default))
    assert _seconds(service["stop_grace_period"]) > drain + 10  # + the engine's shutdown
    assert "SELFCRITIC_API_KEY" not in environment
    assert environment["SELFCRITIC_API_KEY_FILE"] == "/run/secrets/selfcritic_api_keys"
    assert service["secrets"] == ["selfcritic_api_keys"]
