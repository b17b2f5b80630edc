"""Images for server tests: encoded test images, data: URLs, and a loopback image server
(127.0.0.1 only; no test reaches any other address)."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def encoded(color: str = "red", size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    if fmt == "GIF":  # two frames: the first is `color`, the second is not
        frames = [Image.new("RGB", size, color), Image.new("RGB", size, "white")]
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    else:
        Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


RED_PNG = data_url(encoded("red"))
BLUE_PNG = data_url(encoded("blue"))


class _Handler(BaseHTTPRequestHandler):
    """/red.png, /big.bmp (a 1 MB bitmap), /text, /same (-> /red.png),
    /other (-> the same server as `localhost`, another host name)."""

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/red.png": (200, "image/png", encoded("red")),
            "/big.bmp": (200, "image/bmp", encoded("red", (600, 600), "BMP")),
            "/text": (200, "text/plain", b"not an image"),
        }
        if self.path == "/same":
            self._redirect("/red.png")
        elif self.path == "/other":
            self._redirect(f"http://localhost:{port}/red.png")
        elif self.path in routes:
            status, mime, body = routes[self.path]
            self.send_response(status)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def image_server() -> Iterator[str]:
    """A loopback HTTP server; yields its base URL, http://127.0.0.1:PORT."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
