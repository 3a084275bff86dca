"""Built-in ``fetch_url``: a web page as readable text, bounded in bytes and time, SSRF-safe.

Each hop (the URL and every redirect) is checked by `AddressGuard` and connected to the
address it checked, with the original ``Host`` header and TLS server name, so DNS cannot
be switched between the check and the connection. No proxy from the environment is used
(it would bypass the check).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin, urlsplit

import httpx

from bot.tools.builtins.address_guard import AddressGuard, AddressRefused
from bot.tools.builtins.html_text import html_to_text
from bot.tools.registry import ToolSpec
from bot.tools.types import JSONObject, ToolContext, ToolOutput

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")
USER_AGENT = "memorybot-fetch/1.0 (+https://github.com/)"

SPEC = ToolSpec(
    name="fetch_url",
    description=(
        "Fetch a public web page (http or https) and return its readable text. "
        "Use it to read a page the user links to or to check facts on a known URL."
    ),
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string", "description": "Absolute http(s) URL."}},
        "required": ["url"],
    },
)


class FetchRefused(Exception):
    """The URL is not one the tool fetches (scheme, address, too many redirects)."""


class FetchUrl:
    """The tool; one `httpx.AsyncClient` per call (each hop pins its own address)."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        max_bytes: int,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.guard = guard
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._transport = transport

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        url = arguments.get("url")
        if not isinstance(url, str) or not url.strip():
            return ToolOutput("Error: pass the page's absolute http(s) URL as 'url'.", True)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url.strip())
        except TimeoutError:
            return ToolOutput(f"Error: the page did not load within {self.timeout:g} s.", True)
        except (AddressRefused, FetchRefused) as exc:
            return ToolOutput(f"Error: refused: {exc}", True)
        except httpx.HTTPError as exc:
            return ToolOutput(f"Error: could not fetch the page: {type(exc).__name__}", True)

    async def _fetch(self, url: str) -> ToolOutput:
        async with httpx.AsyncClient(
            transport=self._transport, trust_env=False, follow_redirects=False, timeout=None
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                request = await self._pinned_request(client, url)
                response = await client.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    body, cut = await self._read(response)
                finally:
                    await response.aclose()
                return self._output(url, response, body, cut)
        raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")

    async def _pinned_request(self, client: httpx.AsyncClient, url: str) -> httpx.Request:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused("only absolute http and https URLs are fetched")
        if parts.username or parts.password:
            raise FetchRefused("URLs with credentials are not fetched")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self.guard.pick(parts.hostname, port)
        target = httpx.URL(url).copy_with(host=address)
        headers = {"Host": parts.netloc, "User-Agent": USER_AGENT, "Accept": "text/html,*/*"}
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        return client.build_request("GET", target, headers=headers, extensions=extensions)

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    def _output(self, url: str, response: httpx.Response, body: bytes, cut: bool) -> ToolOutput:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        head = f"URL: {url}\nStatus: {response.status_code}\n"
        if kind and not kind.startswith(TEXT_TYPES):
            return ToolOutput(f"{head}Content: {kind}, {len(body)} bytes (not text, not shown)")
        text = body.decode(response.encoding or "utf-8", "replace")
        if kind in ("text/html", "application/xhtml+xml") or (not kind and "<html" in text[:500]):
            title, text = html_to_text(text)
            head += f"Title: {title}\n" if title else ""
        note = f"\n[cut at {self.max_bytes} bytes]" if cut else ""
        return ToolOutput(f"{head}\n{text}{note}", is_error=response.status_code >= 400)
