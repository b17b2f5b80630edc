"""A stdlib stand-in for `selfcritic serve` (health, models, chat answering "4"), run as a
child process by the in-process-mode tests: `python tiny_openai_server.py PORT` (0: a free
one), logging the URL it bound as `selfcritic serve` does."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._send({"status": "ok"})
        elif self.path == "/v1/models":
            self._send({"object": "list", "data": [{"id": "tiny"}]})
        else:
            self._send({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = body.get("n", 1)
        self._send({"choices": [{"index": i, "message": {"role": "assistant", "content": "4"}}
                                for i in range(n)],
                    "usage": {"prompt_tokens": 5, "completion_tokens": n}})

    def _send(self, payload: dict, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"Bound http://127.0.0.1:{server.server_address[1]}; the engine starts next",
          flush=True)
    server.serve_forever()
