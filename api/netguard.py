"""Outbound URL policy for webhooks: a write key must not be able to make the server call internal addresses.

A URL is refused when its host is (or resolves to) any loopback, link-local, private, shared, multicast,
unspecified or reserved address, when it carries ``user:password@`` credentials, or when it names a cloud
metadata / internal host. The check runs at registration and again at every delivery, where the request goes to
the address that was just checked (``pinned``), so a name that re-resolves to 127.0.0.1 (DNS rebinding) is
refused too. ``allow_private`` (``HEALTHTRACE_WEBHOOK_ALLOW_PRIVATE``, off by default) lifts the address rule
for loopback test receivers and private deployments.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from extractors.errors import InputError

Resolver = Callable[[str, int], list[str]]

# names that are internal whatever they resolve to (cloud metadata services, mDNS, single-label hosts)
_BLOCKED_NAMES = {"localhost", "metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".intranet", ".lan")


class UnsafeURLError(InputError):
    """A webhook URL that would reach an internal address."""


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal means, including the shorthand forms ``inet_aton`` accepts
    (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``) which ``ipaddress`` alone rejects."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        pass
    if h and all(c in "0123456789abcdefxABCDEFX." for c in h) and h[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def is_internal(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for every address class a public webhook must never reach."""
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped or addr.sixtofour
        if mapped is not None and is_internal(mapped):
            return True
        if addr in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return is_internal(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return (addr.is_loopback or addr.is_link_local or addr.is_private or addr.is_multicast
            or addr.is_unspecified or addr.is_reserved or not addr.is_global)


@dataclass(frozen=True)
class CheckedURL:
    url: str  # as registered
    host: str  # the host name (or literal) of the URL
    address: str  # the checked address the request goes to
    port: int

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL with the checked address as host, extra headers, request extensions): the connection goes to the
        address that was checked, while Host and TLS SNI/certificate checks keep the registered name."""
        parts = urlsplit(self.url)
        ip = self.address
        netloc_ip = f"[{ip}]" if ":" in ip else ip
        default = 443 if parts.scheme == "https" else 80
        netloc = netloc_ip if self.port == default else f"{netloc_ip}:{self.port}"
        host_header = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        ext = {"sni_hostname": self.host.strip("[]")} if parts.scheme == "https" and _literal(self.host) is None else {}
        return url, {"Host": host_header}, ext


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None,
              require_resolved: bool = False) -> CheckedURL | None:
    """Refuse (``UnsafeURLError``) a URL that reaches an internal address; returns the checked target.

    A name that does not resolve now returns ``None`` at registration (it reaches nothing; delivery checks it
    again), and is refused when ``require_resolved`` (delivery)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError("webhook URL must be http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURLError("webhook URL must not carry credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeURLError("webhook URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise UnsafeURLError("webhook URL has an invalid port") from e
    literal = _literal(host)
    if literal is None and not allow_private and (host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES)
                                                  or "." not in host):
        raise UnsafeURLError("webhook URL names an internal host")
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = (resolver or _system_resolver)(host, port)
        except (OSError, UnicodeError) as e:
            if require_resolved:
                raise UnsafeURLError("webhook host did not resolve") from e
            return None
    if not addresses:
        if require_resolved:
            raise UnsafeURLError("webhook host did not resolve")
        return None
    if not allow_private:
        for a in addresses:
            try:
                ip = ipaddress.ip_address(a.split("%", 1)[0])
            except ValueError as e:
                raise UnsafeURLError("webhook host resolved to an unusable address") from e
            if is_internal(ip):
                raise UnsafeURLError("webhook URL resolves to an internal (loopback, private, link-local or "
                                     "reserved) address")
    return CheckedURL(url=url, host=host, address=addresses[0].split("%", 1)[0], port=port)


def mask_url(url: str) -> str:
    """What a read-scope key sees: scheme and host, path segments that look like tokens hidden, no credentials,
    no query (Slack's ``/services/T000/B000/XXXX`` path is itself the secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    segs = [s for s in parts.path.split("/") if s]
    shown = "/".join(segs[:1]) if segs and len(segs[0]) <= 20 and not any(c.isdigit() for c in segs[0]) else ""
    path = "/" + shown + ("/***" if len(segs) > (1 if shown else 0) else "")
    return f"{parts.scheme}://{host}{port}{path}"
