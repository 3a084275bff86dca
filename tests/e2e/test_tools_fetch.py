"""``fetch_url`` over real HTTP: private addresses refused (also after a redirect), the
address pinned to the one checked, bounded bytes and time, HTML turned into text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.tools.builtins.address_guard import AddressGuard
from bot.tools.builtins.fetch_url import FetchUrl
from bot.tools.types import ToolContext

PAGE = """<html><head><title>Test page</title><style>p {color: red}</style>
<script>alert("no")</script></head><body><nav>Menu</nav><h1>Heading</h1>
<p>First paragraph with a <a href="https://example.com/x">link</a>.</p>
<ul><li>one</li><li>two</li></ul></body></html>"""


class Site:
    """A local aiohttp server on 127.0.0.1 with pages, redirects and a slow page."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.hosts: list[str] = []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/page", self.page)
        app.router.add_get("/big", self.big)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/to", self.redirect)
        app.router.add_get("/image", self.image)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def page(self, request: web.Request) -> web.Response:
        self.hosts.append(request.host)
        return web.Response(text=PAGE, content_type="text/html")

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(text="y" * 5_000_000, content_type="text/plain")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    async def image(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG....", content_type="image/png")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    server = Site()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


def tool(**guard: object) -> FetchUrl:
    return FetchUrl(AddressGuard(**guard), max_bytes=100_000, timeout=5)  # type: ignore[arg-type]


CONTEXT = ToolContext()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost/",
    ],
)
async def test_private_and_loopback_addresses_are_refused(url: str) -> None:
    output = await tool()({"url": url}, CONTEXT)
    assert output.is_error
    assert output.text.startswith("Error: refused:")


async def test_allowed_private_fetch_returns_readable_text(site: Site) -> None:
    output = await tool(allow_private=True)({"url": site.url("/page")}, CONTEXT)
    assert not output.is_error
    assert "Title: Test page" in output.text
    assert "Heading" in output.text
    assert "First paragraph with a link (https://example.com/x)." in output.text
    assert "• one\n• two" in output.text
    for hidden in ("alert", "color: red", "Menu"):
        assert hidden not in output.text


async def test_redirect_to_loopback_is_refused(site: Site) -> None:
    fetch = tool(allowed_networks=["127.0.0.1/32"])
    assert not (await fetch({"url": site.url("/page")}, CONTEXT)).is_error
    for target in (f"http://127.0.0.2:{site.port}/page", f"http://[::1]:{site.port}/page"):
        output = await fetch({"url": site.url(f"/to?url={target}")}, CONTEXT)
        assert output.is_error and "refused" in output.text, output.text


async def test_redirect_within_allowed_addresses_is_followed(site: Site) -> None:
    output = await tool(allow_private=True)({"url": site.url("/to?url=/page")}, CONTEXT)
    assert output.text.startswith(f"URL: {site.url('/page')}\nStatus: 200")


async def test_connection_goes_to_the_checked_address_with_the_original_host(site: Site) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "pinned.test"  # resolved once, by the guard; never by the system
        return ["127.0.0.1"]

    fetch = FetchUrl(
        AddressGuard(allowed_networks=["127.0.0.1/32"], resolver=resolver),
        max_bytes=100_000,
        timeout=5,
    )
    output = await fetch({"url": f"http://pinned.test:{site.port}/page"}, CONTEXT)
    assert "Heading" in output.text
    assert site.hosts == [f"pinned.test:{site.port}"]


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]  # one bad answer is enough

    fetch = FetchUrl(AddressGuard(resolver=resolver), max_bytes=1_000, timeout=5)
    output = await fetch({"url": "http://rebind.test/"}, CONTEXT)
    assert output.is_error and "10.1.2.3" in output.text


async def test_size_and_time_are_bounded(site: Site) -> None:
    fetch = FetchUrl(AddressGuard(allow_private=True), max_bytes=10_000, timeout=0.5)
    big = await fetch({"url": site.url("/big")}, CONTEXT)
    assert big.text.split("\n\n", 1)[1] == "y" * 10_000 + "\n[cut at 10000 bytes]"
    slow = await fetch({"url": site.url("/slow")}, CONTEXT)
    assert slow.is_error and "did not load" in slow.text


async def test_binary_content_is_described_not_shown(site: Site) -> None:
    output = await tool(allow_private=True)({"url": site.url("/image")}, CONTEXT)
    assert "image/png" in output.text and "PNG" not in output.text


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "example.com", "http://u:p@example.com/"]
)
async def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    output = await tool()({"url": url}, CONTEXT)
    assert output.is_error and "refused" in output.text
