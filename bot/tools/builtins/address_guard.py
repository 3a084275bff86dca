"""Which addresses ``fetch_url`` may connect to (SSRF protection).

A host is resolved once; if any of its addresses is loopback, private, link-local, shared,
reserved, multicast or unspecified (IPv4 and IPv6, IPv4 embedded in IPv6 included), the
fetch is refused, unless the operator allows private addresses or lists the network. The
fetch then connects to the checked address itself, so a second DNS answer (rebinding)
cannot point it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(Exception):
    """The URL's host is (or resolves to) an address the bot may not reach."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` (and any IPv4 inside it) is a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not address.is_multicast and not address.is_unspecified


class AddressGuard:
    """Resolves a host and says which address to connect to, or refuses."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_networks: Sequence[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_private = allow_private
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allowed_networks
        )
        self.resolver = resolver

    def allows(self, address: IPAddress) -> bool:
        if self.allow_private or is_public(address):
            return True
        inner = embedded_ipv4(address) or address
        return any(inner in net or address in net for net in self.allowed)

    async def pick(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; `AddressRefused` when any is forbidden."""
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                resolved = await self.resolver(host, port)
            except OSError as exc:
                raise AddressRefused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolved]
        if not addresses:
            raise AddressRefused(f"cannot resolve {host!r}")
        for address in addresses:
            if not self.allows(address):
                raise AddressRefused(
                    f"{host!r} is a private, loopback or reserved address ({address}); "
                    "fetching it is not allowed"
                )
        return str(addresses[0])
