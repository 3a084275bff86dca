"""The aiohttp transport under httpx, over real sockets: streaming, reuse, and every failure
raised as the httpx exception httpcore raises for it."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from bot.runtime.http_transport import AiohttpTransport

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=4), timeout=5) as http:
        yield http


async def raw_server(handler: Raw) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_a_streamed_body_arrives_chunk_by_chunk_before_the_server_finishes(
    client: httpx.AsyncClient,
) -> None:
    release = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await release.wait()
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/stream", events)
    runner, url = await serve_app(app)
    try:
        async with client.stream("POST", f"{url}/stream", json={"a": 1}) as response:
            chunks = response.aiter_bytes()
            first = await asyncio.wait_for(anext(chunks), 2)  # the server is still waiting
            release.set()
            rest = b"".join([chunk async for chunk in chunks])
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert first == b'data: {"n": 1}\n\n'
        assert rest == b"data: [DONE]\n\n"
    finally:
        await runner.cleanup()


async def test_request_body_headers_and_gzip_go_through_as_httpx_built_them(
    client: httpx.AsyncClient,
) -> None:
    seen: dict[str, object] = {}

    async def echo(request: web.Request) -> web.Response:
        seen["json"] = await request.json()
        seen["auth"] = request.headers.get("Authorization")
        seen["query"] = dict(request.query)
        body = gzip.compress(json.dumps({"ok": True}).encode())
        return web.Response(body=body, headers={"Content-Encoding": "gzip"}, status=201)

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner, url = await serve_app(app)
    try:
        response = await client.post(
            f"{url}/echo",
            params={"api-version": "2024-10-21"},
            json={"text": "Привет 👋"},
            headers={"Authorization": "Bearer sk-test"},
        )
    finally:
        await runner.cleanup()
    assert response.status_code == 201
    assert response.json() == {"ok": True}  # httpx decoded the gzip body
    assert seen == {
        "json": {"text": "Привет 👋"},
        "auth": "Bearer sk-test",
        "query": {"api-version": "2024-10-21"},
    }


async def test_keep_alive_connections_are_reused_and_an_unread_body_does_not_poison_one(
    client: httpx.AsyncClient,
) -> None:
    peers: list[object] = []

    async def who(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(text="x" * 200_000)

    app = web.Application()
    app.router.add_get("/who", who)
    runner, url = await serve_app(app)
    try:
        for _ in range(3):
            assert (await client.get(f"{url}/who")).text == "x" * 200_000
        async with client.stream("GET", f"{url}/who") as response:  # left unread
            assert response.status_code == 200
        assert len((await client.get(f"{url}/who")).text) == 200_000
    finally:
        await runner.cleanup()
    assert peers[0] == peers[1] == peers[2], "one keep-alive connection for sequential calls"


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(3)
        writer.close()

    server, url = await raw_server(silent)
    try:
        async with httpx.AsyncClient(
            transport=AiohttpTransport(max_connections=2), timeout=httpx.Timeout(0.3)
        ) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(url)
    finally:
        server.close()


async def test_a_stream_that_stalls_midway_is_a_read_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(3)
        writer.close()

    server, url = await raw_server(stall)
    try:
        async with (
            httpx.AsyncClient(
                transport=AiohttpTransport(max_connections=2), timeout=httpx.Timeout(0.3)
            ) as http,
            http.stream("GET", url) as response,
        ):
            chunks = response.aiter_bytes()
            assert await anext(chunks) == b"hello"
            with pytest.raises(httpx.ReadTimeout):
                await anext(chunks)
    finally:
        server.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # closed before any response
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",  # cut body
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # shorter than announced
        b"NOT HTTP AT ALL\r\n\r\n",  # garbage
    ],
    ids=["closed", "cut-chunked", "short-length", "garbage"],
)
async def test_a_broken_response_is_a_remote_protocol_error_as_with_httpcore(
    client: httpx.AsyncClient, reply: bytes
) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server, url = await raw_server(broken)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            response = await client.get(url)
            await response.aread()
    finally:
        server.close()


async def test_the_transport_opens_a_new_session_after_being_closed() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner, url = await serve_app(app)
    transport = AiohttpTransport(max_connections=2)
    try:
        for _ in range(2):  # python-telegram-bot closes and rebuilds its client on restart
            async with httpx.AsyncClient(transport=transport) as http:
                assert (await http.get(url)).text == "ok"
    finally:
        await runner.cleanup()


async def test_no_failure_carries_the_url_whose_path_holds_the_bot_token(
    client: httpx.AsyncClient,
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await raw_server(garbage)
    token = "123456:SECRET-token"
    try:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.get(f"{url}/bot{token}/getMe")
    finally:
        server.close()
    assert "Bad status line" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
