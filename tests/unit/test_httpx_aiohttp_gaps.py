"""Why the bot keeps its own aiohttp transport (bot/runtime/http_transport.py) over `httpx-aiohttp`.

Both put aiohttp under httpx. Over the same broken servers, `httpx_aiohttp.AiohttpTransport`
(0.2) raises the wrong httpx exceptions and, for a garbage response, lets aiohttp's own error
escape with the whole URL — the bot token is in every Telegram URL — in its message. Ours
raises what httpcore raises and never carries the URL. When these tests start failing, the
library has closed the gaps: measure it then (bench/) and consider adopting it.
"""

from __future__ import annotations

import asyncio

import httpx
import httpx_aiohttp
import pytest

from bot.runtime.http_transport import AiohttpTransport

TOKEN = "123456:SECRET-token"


async def _get(transport: httpx.AsyncBaseTransport, reply: bytes) -> BaseException:
    """GET a Telegram-like URL from a server that answers `reply` and hangs up; the error."""

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(broken, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            response = await client.get(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
            await response.aread()
    except Exception as exc:  # the point is to see what escapes
        return exc
    finally:
        server.close()
    raise AssertionError("the broken server did not fail the request")


CLOSED = b""
CUT = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"
GARBAGE = b"NOT HTTP AT ALL\r\n\r\n"


@pytest.mark.parametrize("reply", [CLOSED, CUT, GARBAGE], ids=["closed", "cut", "garbage"])
async def test_ours_raises_what_httpcore_raises_without_the_url(reply: bytes) -> None:
    error = await _get(AiohttpTransport(max_connections=2), reply)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert TOKEN not in str(error) and error.__suppress_context__


async def test_httpx_aiohttp_calls_a_closed_connection_a_connect_timeout() -> None:
    """A server that hangs up on a request is no timeout: retry and error policy differ."""
    error = await _get(httpx_aiohttp.AiohttpTransport(), CLOSED)
    assert isinstance(error, httpx.ConnectTimeout)


async def test_httpx_aiohttp_calls_a_truncated_body_a_read_error() -> None:
    error = await _get(httpx_aiohttp.AiohttpTransport(), CUT)
    assert isinstance(error, httpx.ReadError)
    assert not isinstance(error, httpx.RemoteProtocolError)


async def test_httpx_aiohttp_lets_a_garbage_response_escape_with_the_bot_token() -> None:
    """Not an httpx error at all (python-telegram-bot's handling misses it), and its message
    holds the URL, token included: one log line of it would leak the bot."""
    error = await _get(httpx_aiohttp.AiohttpTransport(), GARBAGE)
    assert not isinstance(error, httpx.HTTPError)
    assert TOKEN in str(error)
