"""End to end: train the default model 2 GRPO steps, export, serve the export unchanged
with the real server, and get a valid /v1/critique answer from it."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_export_is_served_and_judges(trained_critic_dir, launch_server) -> None:
    metadata = json.loads((trained_critic_dir / "selfcritic-export.json").read_text())
    assert metadata
    server = launch_server(["--model", str(trained_critic_dir), "--served-model-name", "critic"])
    models = httpx.get(server.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["critic", "critic:self-critic"]
    for judge in ("fast", "reason"):
        response = httpx.post(server.url + "/v1/critique", timeout=300, json={
            "model": "critic", "question": "What is 3 + 4?", "responses": ["7", "8"],
            "judge": judge, "max_tokens": 48, "seed": 0})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["winner"] in (0, 1, None) and sorted(body["ranking"]) == [0, 1]
        assert len(body["judgments"]) == 2
    chat = httpx.post(server.url + "/v1/chat/completions", timeout=300, json={
        "model": "critic", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8})
    assert chat.status_code == 200
    server.stop()
