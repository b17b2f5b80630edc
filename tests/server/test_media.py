"""Image loading rules: data: URLs, the allow-list, addresses after DNS, redirects, limits.

Fetches go to a loopback test server only; "other" addresses come from a replaced resolver.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.edge.errors import APIError
from server.media import fetch as media_fetch
from server.media.images import ImageRef, MediaPolicy
from server.settings import ServerSettings
from tests.support.image_fixtures import BLUE_PNG, RED_PNG, data_url, encoded, image_server


def policy(**settings: object) -> MediaPolicy:
    return MediaPolicy.from_settings(ServerSettings(**settings))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with image_server() as url:
        yield url


async def load(url: str, **settings: object) -> object:
    """Check then load one image the way a request does; returns the image."""
    media = policy(**settings)
    refs = [ImageRef(url, "messages[0].content[1]")]
    media.check(refs, "messages")
    [image] = await media.load(refs)
    return image


async def refused(url: str, **settings: object) -> APIError:
    with pytest.raises(APIError) as caught:
        await load(url, **settings)
    error = caught.value
    assert error.status == 400 and error.param == "messages[0].content[1]"
    assert error.message.startswith("messages[0].content[1]: ")
    return error


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                       ("WEBP", "image/webp"), ("GIF", "image/gif")])
async def test_data_urls_decode_to_rgb(fmt: str, mime: str) -> None:
    image = await load(data_url(encoded("red", (6, 4), fmt), mime))
    assert image.mode == "RGB" and image.size == (6, 4)
    red, green, blue = image.getpixel((2, 2))
    assert red > 200 and green < 60 and blue < 60  # a GIF gives its first frame


async def test_http_is_refused_unless_the_host_is_allowed(server: str) -> None:
    error = await refused(f"{server}/red.png")
    assert "--allowed-media-domains" in error.message
    await refused(f"{server}/red.png", allowed_media_domains="images.example.com")
    await refused("ftp://127.0.0.1/red.png", allowed_media_domains="127.0.0.1")


async def test_an_allowed_loopback_server_is_fetched(server: str) -> None:
    image = await load(f"{server}/red.png", allowed_media_domains="127.0.0.1")
    assert image.getpixel((0, 0)) == (255, 0, 0)


async def test_a_redirect_is_followed_only_within_the_host(server: str) -> None:
    allowed = "127.0.0.1,localhost"
    assert (await load(f"{server}/same", allowed_media_domains=allowed)).size == (8, 8)
    error = await refused(f"{server}/other", allowed_media_domains=allowed)
    assert "redirected to another host" in error.message


async def test_private_addresses_are_refused_after_dns(server: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    port = server.rsplit(":", 1)[1]
    # "localhost" is allowed as a name, but the loopback address it resolves to is not
    error = await refused(f"http://localhost:{port}/red.png", allowed_media_domains="localhost")
    assert "non-public address" in error.message

    async def dns(host: str, port: int) -> list[str]:
        return {"private.test": ["10.0.0.7"], "metadata.test": ["169.254.169.254"],
                "mixed.test": ["93.184.215.14", "192.168.1.1"]}[host]

    monkeypatch.setattr(media_fetch, "resolve_host", dns)
    for host in ("private.test", "metadata.test", "mixed.test"):
        error = await refused(f"http://{host}/x.png", allowed_media_domains="*.test")
        assert "non-public address" in error.message


async def test_oversized_images_are_refused(server: str) -> None:
    error = await refused(f"{server}/big.bmp", allowed_media_domains="127.0.0.1",
                          max_image_bytes=100_000)
    assert "limit" in error.message
    await refused(data_url(encoded("red", (300, 300), "BMP"), "image/bmp"),
                  max_image_bytes=100_000)
    error = await refused(data_url(encoded("red", (100, 100))), max_image_pixels=5_000)
    assert "100x100" in error.message


async def test_bad_base64_and_non_images_are_400s(server: str) -> None:
    assert "base64" in (await refused("data:image/png;base64,@@not-base64@@")).message
    assert "not a PNG" in (await refused(data_url(b"hello there", "image/png"))).message
    await refused(f"{server}/text", allowed_media_domains="127.0.0.1")
    await refused("data:text/plain;base64,aGVsbG8=")
    assert "HTTP 404" in (await refused(f"{server}/missing.png",
                                        allowed_media_domains="127.0.0.1")).message


def test_too_many_images_is_a_400_before_anything_loads() -> None:
    refs = [ImageRef(u, f"messages[0].content[{i}]") for i, u in enumerate([RED_PNG, BLUE_PNG])]
    with pytest.raises(APIError) as caught:
        policy(max_images_per_prompt=1).check(refs, "messages")
    assert caught.value.code == "too_many_images"
