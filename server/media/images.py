"""Images in requests: find them, check them against the limits, then load them.

`MediaPolicy.check` runs while a request is validated and looks only at the URLs (how
many, the scheme, the host against the allow-list, a data: URL's size): nothing is
fetched. `MediaPolicy.load` runs after it: data: URLs are decoded, http(s) URLs fetched
(`server.media.fetch`), and every image is decoded in a worker thread, so the event loop
never blocks. Every failure is a 400 whose `param` names the part, e.g.
`messages[0].content[1]`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from server.edge.errors import APIError, bad_request
from server.media.fetch import HostAllowList, MediaError, fetch_image_bytes
from server.protocol.messages import ChatMessage, ImagePart, TextPart
from server.settings import ServerSettings

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_DATA_URL = re.compile(r"^data:image/[\w.+-]+(;[\w.+-]+=[^;,]*)*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class ImageRef:
    """An image a request names: its URL and where it is, for error messages."""

    url: str
    where: str


@dataclass(frozen=True)
class MediaPolicy:
    """The operator's image limits (`--allowed-media-domains`, `--max-image-*`, ...)."""

    allowed: HostAllowList
    max_images: int
    max_bytes: int
    max_pixels: int
    fetch_timeout_s: float

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> MediaPolicy:
        return cls(HostAllowList.parse(settings.allowed_media_domains),
                   settings.max_images_per_prompt, settings.max_image_bytes,
                   settings.max_image_pixels, settings.media_fetch_timeout_s)

    def check(self, refs: Sequence[ImageRef], param: str) -> None:
        """Refuse, before anything is fetched, what no fetch could make acceptable."""
        if len(refs) > self.max_images:
            raise APIError(400, f"The request carries {len(refs)} images; this server takes "
                           f"at most {self.max_images} per prompt (--max-images-per-prompt).",
                           param=param, code="too_many_images")
        for ref in refs:
            self._check_url(ref)

    async def load(self, refs: Sequence[ImageRef]) -> list[Any]:
        """The decoded images (RGB PIL images), in order; a failed one cancels the rest."""
        tasks = [asyncio.ensure_future(self._load_one(ref)) for ref in refs]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _check_url(self, ref: ImageRef) -> None:
        url = ref.url
        if url.startswith("data:"):
            if not _DATA_URL.match(url):
                raise _refused(ref, "a data: URL must look like data:image/png;base64,<data>")
            payload = len(url) - url.index(",") - 1
            if payload * 3 // 4 > self.max_bytes:
                raise _refused(ref, f"the image is larger than the limit of {self.max_bytes} "
                                    "bytes (--max-image-bytes)")
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refused(ref, "an image URL must be a data: URL or an http(s) URL")
        if not self.allowed.allows_host(parts.hostname):
            listed = "none are" if self.allowed.empty else "it is not"
            raise _refused(ref, f"this server fetches images only from hosts listed in "
                                f"--allowed-media-domains, and {listed}: send the image as a "
                                f"data: URL instead")

    async def _load_one(self, ref: ImageRef) -> Any:
        try:
            if ref.url.startswith("data:"):
                return await asyncio.to_thread(self._decode_data_url, ref.url)
            async with asyncio.timeout(self.fetch_timeout_s):
                data = await fetch_image_bytes(ref.url, self.allowed, self.max_bytes)
            return await asyncio.to_thread(decode_image, data, self.max_pixels)
        except TimeoutError:
            raise _refused(ref, f"fetching it took longer than {self.fetch_timeout_s:g} s "
                                "(--media-fetch-timeout-s)") from None
        except MediaError as exc:
            raise _refused(ref, str(exc)) from None

    def _decode_data_url(self, url: str) -> Any:
        try:
            data = base64.b64decode(url[url.index(",") + 1:], validate=True)
        except (binascii.Error, ValueError):
            raise MediaError("the data: URL is not valid base64") from None
        if len(data) > self.max_bytes:
            raise MediaError(f"the image is {len(data)} bytes; the limit is {self.max_bytes}")
        return decode_image(data, self.max_pixels)


def decode_image(data: bytes, max_pixels: int) -> Any:
    """A PNG, JPEG, WebP or GIF (its first frame) as an RGB PIL image, within `max_pixels`."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
    except Exception as exc:  # Pillow raises many types for data it cannot read
        raise MediaError("it is not a PNG, JPEG, WebP or GIF image") from exc
    if width * height > max_pixels:
        raise MediaError(f"the image is {width}x{height} pixels; the limit is {max_pixels} "
                         "(--max-image-pixels)")
    try:
        image.seek(0)  # a GIF's first frame
        return image.convert("RGB")
    except Exception as exc:
        raise MediaError("the image data is damaged or truncated") from exc


def chat_image_refs(messages: Sequence[ChatMessage]) -> list[ImageRef]:
    """Every image_url part, named `messages[i].content[j]`."""
    return [ImageRef(part.image_url.url, f"messages[{i}].content[{j}]")
            for i, message in enumerate(messages) if isinstance(message.content, list)
            for j, part in enumerate(message.content) if isinstance(part, ImagePart)]


def placeholder_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages for the engine: text-only ones exactly as before (`as_text_dict`), those
    with images as parts, `{"type": "image"}` where each image_url part was."""
    out = []
    for message in messages:
        if not message.has_images():
            out.append(message.as_text_dict())
            continue
        parts = [{"type": "text", "text": p.text} if isinstance(p, TextPart) else {"type": "image"}
                 for p in message.content or []]  # type: ignore[union-attr]
        out.append({**message.as_text_dict(), "content": parts})
    return out


def _refused(ref: ImageRef, reason: str) -> APIError:
    return bad_request(f"{ref.where}: {reason}.", param=ref.where, code="invalid_image")
