"""Registry names and shapes, settings, the address guard, the time tool and HTML text."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.llm.bodies import chat_body, responses_body
from bot.llm.endpoint import Endpoint, PromptTemplate, endpoints
from bot.llm.types import ChatMessage, ChatRequest
from bot.tool_config import McpServerConfig
from bot.tools.builtins.address_guard import AddressGuard, AddressRefused, is_public
from bot.tools.builtins.current_time import CurrentTime
from bot.tools.builtins.html_text import html_to_text
from bot.tools.registry import NAME_RULE, RegisteredTool, ToolRegistry, ToolSpec, namespaced
from bot.tools.types import JSONObject, ToolContext, ToolOutput


def tool_settings() -> Settings:
    return Settings(telegram_bot_token="123:abc", _env_file=None)  # type: ignore[call-arg]


class Nothing:
    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        return ToolOutput("")


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("web", "search", "web__search"),
        ("my server", "get.page", "my_server__get_page"),
        ("w", "поиск", "w_______"),
    ],
)
def test_namespaced_names_follow_openais_rule(server: str, tool: str, expected: str) -> None:
    assert namespaced(server, tool) == expected
    assert NAME_RULE.match(expected)


def test_long_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    first, second = namespaced("s", "x" * 80 + "a"), namespaced("s", "x" * 80 + "b")
    assert len(first) == len(second) == 64
    assert first != second and NAME_RULE.match(first)


def test_request_tools_have_each_apis_shape_and_honour_a_chats_choice() -> None:
    registry = ToolRegistry()
    registry.add(ToolSpec("b_tool", "B."), Nothing())
    registry.add(ToolSpec("a_tool", "A.", {"type": "object", "properties": {}}), Nothing())
    assert [t.name for t in registry.request_tools(disabled={"b_tool"})] == ["a_tool"]
    endpoint = Endpoint("http://x/v1", "m", 8000, PromptTemplate("{messages}", "{content}", ()))
    request = ChatRequest("m", (ChatMessage("user", "hi"),), 64, tools=registry.request_tools())
    assert chat_body(request, endpoint)["tools"][0] == {
        "type": "function",
        "function": {
            "name": "a_tool",
            "description": "A.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    responses = responses_body(request, dataclasses.replace(endpoint, api="responses"))
    assert responses["tools"][1] == {
        "type": "function",
        "name": "b_tool",
        "description": "B.",
        "parameters": {"type": "object", "properties": {}},
    }
    completions = dataclasses.replace(endpoint, api="completions")
    assert not completions.supports_tools, "completions mode has no function calling"
    without = dataclasses.replace(endpoint, tools=False)  # a profile's "tools": false
    assert not without.supports_tools and "tools" not in chat_body(request, without)
    with pytest.raises(ValueError, match="twice"):
        registry.add(ToolSpec("a_tool", "again"), Nothing())


def test_a_servers_relisting_replaces_only_its_own_tools() -> None:
    registry = ToolRegistry()
    registry.add(ToolSpec("current_time", "T."), Nothing())
    old = RegisteredTool(ToolSpec("web__a", "A.", source="mcp:web"), Nothing())
    registry.replace_source("mcp:web", [old])
    new = RegisteredTool(ToolSpec("web__b", "B.", source="mcp:web"), Nothing())
    registry.replace_source("mcp:web", [new])
    assert [s.name for s in registry.specs()] == ["current_time", "web__b"]


def test_invalid_names_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        ToolSpec("bad name", "x")


def test_settings_read_servers_in_both_shapes_and_mask_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MCP_SERVERS",
        '{"web": {"command": "uvx", "args": ["srv"], "env": {"KEY": "hunter22"}},'
        ' "docs": {"url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer t0ken"},'
        ' "confirm": ["delete"]}}',
    )
    monkeypatch.setenv("BUILTIN_TOOLS", "current_time, fetch_url")
    monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "10.0.0.0/8")
    settings = tool_settings()
    web, docs = settings.mcp_servers
    assert (web.transport, docs.transport) == ("stdio", "http")
    assert docs.needs_confirmation("delete") and not docs.needs_confirmation("read")
    assert settings.builtin_tools == {"current_time", "fetch_url"}
    assert "hunter22" not in repr(settings) and "t0ken" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_SERVERS", "not json"),
        ("MCP_SERVERS", '[{"name": "x"}]'),
        ("MCP_SERVERS", '[{"name": "x", "command": "a", "url": "http://b"}]'),
        ("MCP_SERVERS", '[{"name": "x", "url": "ftp://b"}]'),
        ("MCP_SERVERS", '[{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]'),
        ("BUILTIN_TOOLS", "fetch_url,shell"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("FETCH_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("TOOLS_MAX_STEPS", "0"),
    ],
)
def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        tool_settings()


def test_empty_builtin_list_turns_them_all_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILTIN_TOOLS", "")
    assert tool_settings().builtin_tools == frozenset()


def test_server_config_needs_exactly_one_transport() -> None:
    with pytest.raises(ValidationError):
        McpServerConfig(name="x")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("ff02::1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_guard_allows_listed_networks_and_refuses_unresolvable_names() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    guard = AddressGuard(allowed_networks=["10.1.0.0/16"], resolver=resolver)
    assert await guard.pick("10.1.2.3", 80) == "10.1.2.3"
    with pytest.raises(AddressRefused, match="private"):
        await guard.pick("10.2.0.1", 80)
    with pytest.raises(AddressRefused, match="cannot resolve"):
        await guard.pick("nowhere.invalid", 80)
    assert await AddressGuard(allow_private=True).pick("[::1]", 80) == "::1"


NOW = datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)


async def test_current_time_uses_argument_then_user_then_default_zone() -> None:
    tool = CurrentTime("UTC", now=lambda: NOW)
    argument = await tool({"timezone": "Asia/Tokyo"}, ToolContext(timezone="Europe/Paris"))
    user = await tool({}, ToolContext(timezone="Europe/Paris"))
    default = await tool({}, ToolContext())
    assert argument.text == "Friday, 2026-12-04 00:04:05 JST (UTC+09:00, time zone Asia/Tokyo)"
    assert user.text == "Thursday, 2026-12-03 16:04:05 CET (UTC+01:00, time zone Europe/Paris)"
    assert default.text.startswith("Thursday, 2026-12-03 15:04:05 UTC (UTC+00:00")
    bad = await tool({"timezone": "Nowhere/City"}, ToolContext())
    assert bad.is_error and "unknown time zone" in bad.text


def test_html_to_text_keeps_the_reading_and_drops_the_rest() -> None:
    title, text = html_to_text(
        "<html><head><title> A  page </title><script>x()</script></head>"
        "<body><h1>Title</h1><p>One&nbsp;two &amp; three</p><footer>foot</footer>"
        "<p>Next <a href='/rel'>rel</a></p></body></html>"
    )
    assert title == "A page"
    assert text == "Title\n\nOne two & three\n\nNext rel"


def test_a_profile_can_say_its_backend_has_no_tools() -> None:
    settings = Settings(
        telegram_bot_token="123:abc",
        _env_file=None,  # type: ignore[call-arg]
        model_profiles='{"plain": {"model": "m", "tools": false}, "think": {"model": "o4-mini"}}',
    )
    found = endpoints(settings)
    assert not found["plain"].supports_tools
    assert found["think"].supports_tools and found["default"].supports_tools
