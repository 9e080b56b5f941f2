"""Who is calling, as rate limits count callers.

The gateway is the public entry. Behind a load balancer or an ingress
controller it sees the proxy's address, and the caller's is in
X-Forwarded-For, which each proxy appends to. That header is believed only
as far as proxies we trust wrote it: read from the right, every hop that is
a trusted proxy is skipped and the first that is not is the caller.
Anything further left was written by the caller, who could claim any
address. The trusted proxies are KSMART_TRUSTED_PROXY: addresses or
networks (an ingress controller's pods have no fixed address, but live in
the cluster's pod network), separated by commas.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(setting: str) -> tuple[Network, ...]:
    """KSMART_TRUSTED_PROXY's networks; a ValueError names every entry
    that is neither an address nor a network."""
    entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
    networks, bad = [], []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    if bad:
        raise ValueError(
            "KSMART_TRUSTED_PROXY takes addresses or networks separated by commas;"
            f" not understood: {', '.join(bad)}"
        )
    return tuple(networks)


def client_address(
    remote_addr: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str:
    """The rate-limit key of the caller of a request that came from
    remote_addr with this X-Forwarded-For."""
    address = remote_addr or "unknown"
    if forwarded_for and _is_trusted(address, trusted):
        for hop in reversed(forwarded_for.split(",")):
            address = hop.strip()
            if not _is_trusted(address, trusted):
                break
    return rate_limit_key(address)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in trusted)


def rate_limit_key(address: str) -> str:
    """An IPv4 address as it is; an IPv6 address by its /64, which one
    subscriber commonly holds whole (one address each would be no limit)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # ::ffff:203.0.113.9 is an IPv4 client
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
