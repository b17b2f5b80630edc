"""Fetching an image URL safely: allow-listed hosts, public addresses, same-host redirects.

A host must be on the operator's allow-list; every address it resolves to must be public
(not loopback, private, link-local, shared or reserved, which covers cloud metadata
endpoints) unless the address itself is listed; the connection goes to the address that
was checked (the host name still sent as `Host` and TLS SNI, so certificates are checked),
so a second DNS answer cannot redirect it. A redirect is followed only to the same host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

import httpx

MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class MediaError(ValueError):
    """One image cannot be used; the message says why (the caller names the part)."""


@dataclass(frozen=True)
class HostAllowList:
    """`--allowed-media-domains`: host names, `*.` suffixes, IP addresses and networks.

    >>> allow = HostAllowList.parse(["img.example.com", "*.cdn.example.org", "10.0.0.0/8"])
    >>> [allow.allows_host(h) for h in ("IMG.example.com", "a.cdn.example.org", "example.com")]
    [True, True, False]
    >>> allow.allows_address(ipaddress.ip_address("10.1.2.3")), allow.allows_host("10.1.2.3")
    (True, True)
    >>> allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    False
    """

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: list[str]) -> HostAllowList:
        names, suffixes, networks = set(), [], []
        for entry in (e.strip().lower() for e in entries if e.strip()):
            if entry.startswith("*."):
                suffixes.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def empty(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def allows_host(self, host: str) -> bool:
        """Whether URLs naming `host` may be fetched at all (before DNS)."""
        host = host.lower().strip("[]")
        try:
            return self._listed(ipaddress.ip_address(host))
        except ValueError:
            return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether a resolved address may be connected to: public, or listed itself."""
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        return address.is_global or self._listed(address)

    def _listed(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to play DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%")[0] for info in infos]


async def fetch_image_bytes(url: str, allow: HostAllowList, max_bytes: int) -> bytes:
    """The body of `url`, at most `max_bytes`; raises MediaError saying what was refused."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not allow.allows_host(host):
            raise MediaError(f"fetching from {host or current!r} is not allowed")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await _checked_address(host, port, allow)
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "GET", _pinned(parts, address, port), headers={"Host": parts.netloc.split("@")[-1],
                                                               "Accept": "image/*"},
                extensions={"sni_hostname": host} if parts.scheme == "https" else {})
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise MediaError(f"fetching {host} failed: {type(exc).__name__}") from exc
            try:
                if response.is_redirect:
                    current = _same_host_redirect(current, response, host)
                    continue
                if response.status_code != 200:
                    raise MediaError(f"{host} answered HTTP {response.status_code}")
                return await _read_capped(response, max_bytes)
            finally:
                await response.aclose()
    raise MediaError(f"more than {MAX_REDIRECTS} redirects")


async def _checked_address(host: str, port: int, allow: HostAllowList) -> str:
    try:
        found = [ipaddress.ip_address(a) for a in await resolve_host(host, port)]
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot resolve {host}") from exc
    if not found:
        raise MediaError(f"cannot resolve {host}")
    refused = [a for a in found if not allow.allows_address(a)]
    if refused:
        raise MediaError(f"{host} resolves to {refused[0]}, a loopback, private, link-local or "
                         "otherwise non-public address; an operator can allow it by listing "
                         "that address in --allowed-media-domains")
    return str(found[0])


def _pinned(parts: SplitResult, address: str, port: int) -> str:
    """The URL with its host replaced by the checked address."""
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path or '/'}{query}"


def _same_host_redirect(current: str, response: httpx.Response, host: str) -> str:
    target = urljoin(current, response.headers.get("location", ""))
    target_host = (urlsplit(target).hostname or "").lower()
    if target_host != host.lower():
        raise MediaError(f"{host} redirected to another host ({target_host or target!r}); "
                         "redirects are followed only within the same host")
    return target


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaError(f"the image is {int(declared)} bytes; the limit is {max_bytes}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise MediaError(f"the image is larger than the limit of {max_bytes} bytes")
    return bytes(body)
