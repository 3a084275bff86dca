"""The transport under every httpx client of the bot (model server and Telegram): aiohttp.

httpx stays the API (httpx-sse, python-telegram-bot's `HTTPXRequest`); only the bytes move
through aiohttp. httpx's own transport (httpcore on anyio) builds a cancel scope and pauses and
resumes the socket on every read, which for a streamed reply is every token: bench/ at 200
chats measured a quarter less CPU per turn with aiohttp (C HTTP parser, plain asyncio).

Failures are raised as the httpx exceptions httpcore would raise for the same event, so error
handling above (ours and python-telegram-bot's) sees no difference.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx

from bot.config import Settings

# Most specific first: aiohttp's timeouts are also ServerConnectionErrors.
_FAILURES: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),
)


_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Re-raise aiohttp's failure as httpx's, without the URL (the bot token is in its path).

    aiohttp puts the full URL in some messages; the original is not chained for the same
    reason, so no traceback can print it.
    """
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        message = _URL.sub("<url>", str(exc)) or type(exc).__name__
        for failure, raised in _FAILURES:
            if isinstance(exc, failure):
                raise raised(message, request=request) from None
        raise  # unreachable: ClientError is the last row


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives (one SSE event per chunk when the server sends so)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body read to the end frees the connection for reuse; one left unread closes it.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session (opened on first use, again after close)."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._ssl = httpx.create_ssl_context()  # the CA bundle httpx itself would use
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with _as_httpx_errors(request):
            response = await self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,  # httpx decides about redirects
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),  # waiting for a free connection
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        extensions = {
            "http_version": b"HTTP/1.1",
            "reason_phrase": (response.reason or "").encode(),
        }
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions=extensions,
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def model_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one shared client for the model server; the timeout is per read, not per reply."""
    timeout = httpx.Timeout(settings.openai_timeout, connect=settings.openai_connect_timeout)
    return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport(max_connections=512))
