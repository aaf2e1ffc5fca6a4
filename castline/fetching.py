"""Fetching a source from the web, guarded: what a URL serves, before anything is spent.

Only http and https. Every address a host name resolves to is checked when the connection is
made (so a name that resolves differently a moment later cannot slip past), after every
redirect too: a loopback, private, link-local (cloud metadata), multicast or otherwise
non-public address is refused unless private addresses are allowed explicitly (an intranet
wiki). The body is read up to a size cap, within timeouts; redirects are followed up to a
limit; the content type must be a page, a PDF or text. Every failure is a `SourceError` that
says what went wrong and what to do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx

from castline import __version__
from castline.domain import SourceKind
from castline.errors import SourceError

MAX_BYTES = 50 * 1024 * 1024  # the most a fetched source may be, as served
MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 20.0  # between two pieces of the body
TOTAL_TIMEOUT_S = 120.0  # for the whole body
# what a source may be, by the type the server declares
CONTENT_KINDS: dict[str, SourceKind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
}
_ALLOW_HINT = (
    "if it is an intranet page you mean to use, pass --allow-private-urls (or set "
    "`research.allow_private_urls: true` in the show bible)"
)


@dataclass(frozen=True)
class Page:
    """What a URL served: its final address after redirects, when, and the body as served."""

    url: str  # as given
    final_url: str
    retrieved_at: str  # ISO 8601, UTC
    kind: SourceKind
    content_type: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def is_url(reference: str) -> bool:
    """Whether a `--source` names a URL rather than a file (any scheme, so that ftp:// is
    refused as a URL, not looked for as a file)."""
    scheme, sep, _ = reference.partition("://")
    return bool(sep) and scheme.isascii() and scheme.isalpha() and len(scheme) > 1


def why_refused(address: str) -> str | None:
    """Why an IP address may not be fetched without the private allowance, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private network address"
    if not ip.is_global:
        return "not a public internet address"
    return None


class BlockedAddress(Exception):
    """Raised at connection time; turned into a `SourceError` by `fetch`."""

    def __init__(self, host: str, address: str, why: str) -> None:
        self.host, self.address, self.why = host, address, why
        super().__init__(f"{host} resolves to {address}, {why}")


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses `why_refused` lets through: the check and the connection
    use the same resolved address."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host} cannot be resolved ({exc.strerror})") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not self.allow_private:
            for address in addresses:
                why = why_refused(address)
                if why is not None:  # one private answer is enough to refuse the name
                    raise BlockedAddress(host, address, why)
        return super().connect_tcp(
            addresses[0], port, timeout, local_address, socket_options=socket_options
        )


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool) -> None:
        super().__init__(trust_env=False)  # no proxy from the environment: it would skip the guard
        # httpx builds its httpcore pool without a way to choose the network backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            network_backend=_GuardedBackend(allow_private),
        )


def fetch(url: str, *, allow_private: bool = False, max_bytes: int = MAX_BYTES) -> Page:
    """GET the URL, following redirects, or raise a `SourceError` saying why not."""
    _check_scheme(url, url)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    headers = {"User-Agent": f"castline/{__version__} (podcast research)", "Accept": _ACCEPT}
    with httpx.Client(
        transport=_GuardedTransport(allow_private),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
    ) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        target = response.headers.get("location", "")
                        if not target:
                            raise SourceError(url, f"{current} redirects nowhere (no Location)")
                        current = urljoin(current, target)
                        _check_scheme(url, current)
                        continue
                    return _page(url, current, response, max_bytes)
            except BlockedAddress as blocked:
                where = "" if current == url else f" (redirected to {current})"
                raise SourceError(url, f"is not fetched{where}: {blocked}; {_ALLOW_HINT}") from None
            except httpx.TimeoutException:
                raise SourceError(
                    url,
                    f"did not answer in time ({current}); try again later, or save the "
                    "page and give the file",
                ) from None
            except (httpx.InvalidURL, UnicodeError) as exc:  # an unencodable host name, say
                raise SourceError(
                    url, f"is not a valid address ({_brief(exc)}); check it"
                ) from None
            except httpx.HTTPError as exc:
                raise SourceError(
                    url,
                    f"cannot be fetched ({_brief(exc)}); check the address, or save the "
                    "page and give the file",
                ) from None
    raise SourceError(url, f"redirects more than {MAX_REDIRECTS} times; give the final address")


_ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.1"


def _check_scheme(given: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed here, so that a bad port is this error
    except ValueError as exc:
        raise SourceError(given, f"is not a valid address ({exc}); check it") from None
    if parts.scheme not in ("http", "https"):
        where = "" if url == given else f" (it redirects to {url})"
        raise SourceError(
            given,
            f"only http and https addresses are fetched{where}; save the document and "
            "give the file",
        )
    if not parts.hostname:
        raise SourceError(given, "has no host name; give a full address such as https://…")


def _page(given: str, url: str, response: httpx.Response, max_bytes: int) -> Page:
    if response.status_code != 200:
        raise SourceError(
            given,
            f"answered {response.status_code} {response.reason_phrase} ({url}); check the "
            "address, or save the page and give the file",
        )
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    kind = CONTENT_KINDS.get(media)
    if kind is None:
        raise SourceError(
            given,
            f"serves {media or 'no content type'}, not a web page, a PDF or text; give "
            "the address of the article itself, or download the document and give the file",
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(given, _too_big(int(declared), max_bytes))
    body = bytearray()
    deadline = time.monotonic() + TOTAL_TIMEOUT_S
    for chunk in response.iter_bytes():  # decompressed as it comes: a zip bomb meets the cap
        body += chunk
        if len(body) > max_bytes:
            raise SourceError(given, _too_big(len(body), max_bytes, more=True))
        if time.monotonic() > deadline:
            raise SourceError(
                given,
                f"took more than {TOTAL_TIMEOUT_S:.0f} s to download; save the page and "
                "give the file",
            )
    retrieved = datetime.now(UTC).replace(microsecond=0).isoformat()
    return Page(given, url, retrieved, kind, content_type, bytes(body))


def _too_big(size: int, limit: int, *, more: bool = False) -> str:
    amount = "is" if more else f"is {size / 1e6:.1f} MB,"
    return (
        f"{amount} more than the {limit / 1e6:.0f} MB a fetched source may be; download the "
        "part on the topic and give the file"
    )


def _brief(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
