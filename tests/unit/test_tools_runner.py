"""The runner and the loop: every failure of a call is an error result, never a crash."""

from __future__ import annotations

import asyncio

import pytest

from bot.tools.calls import ToolCall
from bot.tools.history import LOST_RESULT, exchange_units, repair, stub_old_results
from bot.tools.loop import ToolLoop, ToolStatus, argument_preview
from bot.tools.registry import ToolRegistry, ToolSpec
from bot.tools.runner import ToolRunner, ToolUnavailable, truncate_utf8
from bot.tools.types import JSON, JSONObject, ToolContext, ToolOutput

CONTEXT = ToolContext(chat_id=1, user_id=2)


class Echo:
    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        return ToolOutput(f"echo {arguments.get('text', '')}")


class Raises:
    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        raise KeyError("missing thing")


class Hangs:
    def __init__(self) -> None:
        self.cancelled = False

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ToolOutput("never")


class Huge:
    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        return ToolOutput("é" * 5_000_000)  # 10 MB of UTF-8


class Down:
    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        raise ToolUnavailable("the MCP server 'web' is unavailable right now")


def registry(**extra: object) -> ToolRegistry:
    reg = ToolRegistry()
    reg.add(ToolSpec("echo", "Echo."), Echo())
    reg.add(ToolSpec("raises", "Raises."), Raises())
    reg.add(ToolSpec("huge", "Huge."), Huge())
    reg.add(ToolSpec("down", "Down."), Down())
    reg.add(ToolSpec("careful", "Asks first.", needs_confirmation=True), Echo())
    return reg


def runner(reg: ToolRegistry | None = None, **options: object) -> ToolRunner:
    return ToolRunner(reg or registry(), timeout=5, max_result_bytes=1_000, **options)  # type: ignore[arg-type]


async def test_a_call_runs_and_answers() -> None:
    result = await runner().run(ToolCall("c1", "echo", '{"text": "hi"}'), CONTEXT)
    assert (result.call_id, result.content_text, result.is_error) == ("c1", "echo hi", False)


async def test_unknown_tool_gives_an_error_naming_the_tools() -> None:
    result = await runner().run(ToolCall("c1", "nope", "{}"), CONTEXT)
    assert result.status == "unknown_tool" and result.is_error
    assert "'nope'" in result.content_text and "echo" in result.content_text


@pytest.mark.parametrize("arguments", ['{"text": ', "[1]", "null", "not json"])
async def test_invalid_json_arguments_give_an_error(arguments: str) -> None:
    result = await runner().run(ToolCall("c1", "echo", arguments), CONTEXT)
    assert result.status == "bad_arguments" and result.is_error
    assert "JSON" in result.content_text


async def test_a_raising_tool_gives_an_error() -> None:
    result = await runner().run(ToolCall("c1", "raises", "{}"), CONTEXT)
    assert result.status == "failed"
    assert result.content_text == "Error: the tool failed: KeyError: 'missing thing'"


async def test_a_hanging_tool_times_out_and_is_cancelled() -> None:
    reg = registry()
    hangs = Hangs()
    reg.add(ToolSpec("hangs", "Hangs."), hangs)
    result = await runner(reg).run(ToolCall("c1", "hangs", "{}"), CONTEXT, seconds=0.05)
    assert result.status == "timeout" and "timed out" in result.content_text
    assert hangs.cancelled


async def test_a_huge_result_is_truncated_with_a_note() -> None:
    result = await runner().run(ToolCall("c1", "huge", "{}"), CONTEXT)
    assert result.truncated
    assert len(result.content_text.encode()) <= 1_000
    assert "[truncated: the tool returned 10000000 bytes" in result.content_text


async def test_a_dead_server_gives_an_unavailable_result() -> None:
    result = await runner().run(ToolCall("c1", "down", "{}"), CONTEXT)
    assert result.status == "unavailable"
    assert result.content_text == "Error: the MCP server 'web' is unavailable right now"


async def test_confirmation_is_asked_and_a_refusal_is_reported() -> None:
    asked: list[str] = []

    async def confirm(call: ToolCall, spec: ToolSpec, context: ToolContext) -> bool:
        assert context.chat_id == 1
        asked.append(spec.name)
        return call.id == "yes"

    run = runner(confirm=confirm)
    yes = await run.run(ToolCall("yes", "careful", '{"text": "go"}'), CONTEXT)
    no = await run.run(ToolCall("no", "careful", "{}"), CONTEXT)
    assert yes.content_text == "echo go"
    assert no.status == "declined" and no.is_error
    assert asked == ["careful", "careful"]
    unasked = await runner().run(ToolCall("x", "careful", "{}"), CONTEXT)
    assert unasked.status == "declined"  # no way to ask: never run


async def test_parallel_calls_keep_their_order_and_fail_alone() -> None:
    calls = [
        ToolCall("a", "raises", "{}"),
        ToolCall("b", "echo", '{"text": "ok"}'),
        ToolCall("c", "nope", "{}"),
    ]
    results = await runner().run_all(calls, CONTEXT)
    assert [r.call_id for r in results] == ["a", "b", "c"]
    assert [r.status for r in results] == ["failed", "ok", "unknown_tool"]


def test_truncation_never_splits_a_character() -> None:
    text, cut = truncate_utf8("ж" * 1_000, 300)
    assert cut and len(text.encode()) <= 300
    text.encode("utf-8")  # valid
    assert truncate_utf8("short", 300) == ("short", False)


def loop(steps: int = 2, seconds: float = 60.0, **extra: object) -> ToolLoop:
    return ToolLoop(runner(), "chat", CONTEXT, max_steps=steps, timeout=seconds, **extra)  # type: ignore[arg-type]


async def test_loop_step_gives_the_api_messages_and_reports_status() -> None:
    seen: list[ToolStatus] = []

    async def on_status(status: ToolStatus) -> None:
        seen.append(status)

    tool_loop = loop(on_status=on_status)
    calls = [ToolCall("a", "echo", '{"text": "telegram bot api 10"}'), ToolCall("b", "raises", "")]
    outcome = await tool_loop.step("Looking.", calls)
    assert outcome.messages == [
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "echo", "arguments": '{"text": "telegram bot api 10"}'},
                },
                {"id": "b", "type": "function", "function": {"name": "raises", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "echo telegram bot api 10"},
        {"role": "tool", "tool_call_id": "b", "content": outcome.results[1].content_text},
    ]
    assert [(s.call_id, s.phase) for s in seen] == [
        ("a", "running"),
        ("b", "running"),
        ("a", "done"),
        ("b", "failed"),
    ]
    assert seen[0].preview == "telegram bot api 10"
    assert seen[0].arguments == '{"text": "telegram bot api 10"}'
    assert seen[2].result_excerpt() == "echo telegram bot api 10"
    assert seen[3].result_excerpt(10) == "Error: th…"


async def test_loop_stops_at_the_step_limit_with_every_call_answered() -> None:
    tool_loop = loop(steps=1)
    assert tool_loop.tools_allowed
    await tool_loop.step("", [ToolCall("a", "echo", "{}")])
    assert not tool_loop.tools_allowed
    outcome = await tool_loop.step("", [ToolCall("b", "echo", "{}"), ToolCall("c", "echo", "{}")])
    assert outcome.stopped
    assert [r.status for r in outcome.results] == ["step_limit", "step_limit"]
    assert [m["tool_call_id"] for m in outcome.messages[1:]] == ["b", "c"]  # type: ignore[index,call-overload]


async def test_loop_deadline_stops_tools() -> None:
    now = [100.0]
    tool_loop = loop(steps=10, seconds=5.0, clock=lambda: now[0])
    await tool_loop.step("", [ToolCall("a", "echo", "{}")])
    now[0] = 106.0
    assert not tool_loop.tools_allowed
    outcome = await tool_loop.step("", [ToolCall("b", "echo", "{}")])
    assert outcome.results[0].status == "step_limit"
    assert "time for tools" in outcome.results[0].content_text


async def test_stop_cancels_a_running_step() -> None:
    reg = registry()
    hangs = Hangs()
    reg.add(ToolSpec("hangs", "Hangs."), hangs)
    tool_loop = ToolLoop(ToolRunner(reg, timeout=60, max_result_bytes=100), "chat", CONTEXT, 3, 60)
    task = asyncio.create_task(tool_loop.step("", [ToolCall("a", "hangs", "{}")]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hangs.cancelled


async def test_responses_loop_gives_input_items() -> None:
    tool_loop = ToolLoop(runner(), "responses", CONTEXT, max_steps=2, timeout=60)
    outcome = await tool_loop.step("", [ToolCall("call_1", "echo", '{"text": "x"}')])
    assert outcome.messages == [
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "echo",
            "arguments": '{"text": "x"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "echo x"},
    ]


def test_argument_preview_takes_the_first_text_argument() -> None:
    assert argument_preview(ToolCall("a", "s", '{"n": 3, "query": "  a  b "}')) == "a b"
    assert argument_preview(ToolCall("a", "s", "{bad")) == ""
    long = argument_preview(ToolCall("a", "s", '{"q": "' + "x" * 100 + '"}'), limit=10)
    assert long == "x" * 9 + "…"


def assistant(*ids: str) -> JSONObject:
    calls: list[JSON] = [
        {"id": i, "type": "function", "function": {"name": "t", "arguments": "{}"}} for i in ids
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def answer(call_id: str, content: str = "ok") -> JSONObject:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


USER: JSONObject = {"role": "user", "content": "hi"}


def test_repair_answers_lost_calls_and_drops_orphans() -> None:
    messages = [answer("x"), USER, assistant("a", "b"), answer("b"), answer("zz"), USER]
    assert repair(messages) == [
        USER,
        assistant("a", "b"),
        {"role": "tool", "tool_call_id": "a", "content": LOST_RESULT},
        answer("b"),
        USER,
    ]


def test_units_keep_a_call_with_its_results() -> None:
    units = exchange_units([USER, assistant("a"), answer("a"), USER])
    assert [len(u) for u in units] == [1, 2, 1]


def test_old_large_results_become_stubs_first() -> None:
    big = "z" * 5_000
    messages = [USER, assistant("a"), answer("a", big), USER, assistant("b"), answer("b", big)]
    out = stub_old_results(messages, keep_last=1, max_bytes=1_000)
    assert out[2]["content"] == "[old tool result of 5000 bytes dropped to save space]"
    assert out[5]["content"] == big
