"""The runner and the loop: every failure of a call is an error result, never a crash."""

from __future__ import annotations

import asyncio

import pytest

from bot.llm.bodies import chat_body, responses_body
from bot.llm.exchanges import LOST_RESULT
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatMessage, ChatRequest
from bot.parts import TextPart, ToolCallPart, ToolResultPart
from bot.prompt.fit import build_prompt
from bot.tools.loop import ToolLoop, ToolStatus, argument_preview
from bot.tools.registry import ToolRegistry, ToolSpec
from bot.tools.runner import ToolRunner, ToolUnavailable, truncate_utf8
from bot.tools.types import JSONObject, ToolContext, ToolOutput
from bot.values import HistoryItem
from tests.tool_feed import ENDPOINT

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
    result = await runner().run(ToolCallPart("c1", "echo", '{"text": "hi"}'), CONTEXT)
    assert (result.call_id, result.content_text, result.is_error) == ("c1", "echo hi", False)


async def test_unknown_tool_gives_an_error_naming_the_tools() -> None:
    result = await runner().run(ToolCallPart("c1", "nope", "{}"), CONTEXT)
    assert result.status == "unknown_tool" and result.is_error
    assert "'nope'" in result.content_text and "echo" in result.content_text


@pytest.mark.parametrize("arguments", ['{"text": ', "[1]", "null", "not json"])
async def test_invalid_json_arguments_give_an_error(arguments: str) -> None:
    result = await runner().run(ToolCallPart("c1", "echo", arguments), CONTEXT)
    assert result.status == "bad_arguments" and result.is_error
    assert "JSON" in result.content_text


async def test_a_raising_tool_gives_an_error() -> None:
    result = await runner().run(ToolCallPart("c1", "raises", "{}"), CONTEXT)
    assert result.status == "failed"
    assert result.content_text == "Error: the tool failed: KeyError: 'missing thing'"


async def test_a_hanging_tool_times_out_and_is_cancelled() -> None:
    reg = registry()
    hangs = Hangs()
    reg.add(ToolSpec("hangs", "Hangs."), hangs)
    result = await runner(reg).run(ToolCallPart("c1", "hangs", "{}"), CONTEXT, seconds=0.05)
    assert result.status == "timeout" and "timed out" in result.content_text
    assert hangs.cancelled


async def test_a_servers_own_timeout_and_the_loops_deadline_bound_a_call() -> None:
    reg = registry()
    reg.add(ToolSpec("hangs", "Hangs.", timeout=0.05), Hangs())
    own = await runner(reg).run(ToolCallPart("c1", "hangs", "{}"), CONTEXT)
    assert own.status == "timeout" and "after 0.05 s" in own.content_text
    reg.add(ToolSpec("hangs_too", "Hangs."), Hangs())
    late = await runner(reg).run(ToolCallPart("c2", "hangs_too", "{}"), CONTEXT, within=0.05)
    assert late.status == "timeout" and "after 0.05 s" in late.content_text


async def test_a_huge_result_is_truncated_with_a_note() -> None:
    result = await runner().run(ToolCallPart("c1", "huge", "{}"), CONTEXT)
    assert result.truncated
    assert len(result.content_text.encode()) <= 1_000
    assert "[truncated: the tool returned 10000000 bytes" in result.content_text


async def test_a_dead_server_gives_an_unavailable_result() -> None:
    result = await runner().run(ToolCallPart("c1", "down", "{}"), CONTEXT)
    assert result.status == "unavailable"
    assert result.content_text == "Error: the MCP server 'web' is unavailable right now"


async def test_confirmation_is_asked_and_a_refusal_is_reported() -> None:
    asked: list[str] = []

    async def confirm(call: ToolCallPart, spec: ToolSpec, context: ToolContext) -> bool:
        assert context.chat_id == 1
        asked.append(spec.name)
        return call.call_id == "yes"

    run = runner(confirm=confirm)
    yes = await run.run(ToolCallPart("yes", "careful", '{"text": "go"}'), CONTEXT)
    no = await run.run(ToolCallPart("no", "careful", "{}"), CONTEXT)
    assert yes.content_text == "echo go"
    assert no.status == "declined" and no.is_error
    assert asked == ["careful", "careful"]
    unasked = await runner().run(ToolCallPart("x", "careful", "{}"), CONTEXT)
    assert unasked.status == "declined"  # no way to ask: never run


async def test_parallel_calls_keep_their_order_and_fail_alone() -> None:
    calls = [
        ToolCallPart("a", "raises", "{}"),
        ToolCallPart("b", "echo", '{"text": "ok"}'),
        ToolCallPart("c", "nope", "{}"),
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
    return ToolLoop(runner(), CONTEXT, max_steps=steps, timeout=seconds, **extra)  # type: ignore[arg-type]


async def test_loop_step_gives_the_calls_and_results_and_reports_status() -> None:
    seen: list[ToolStatus] = []

    async def on_status(status: ToolStatus) -> None:
        seen.append(status)

    tool_loop = loop(on_status=on_status)
    calls = [
        ToolCallPart("a", "echo", '{"text": "telegram bot api 10"}'),
        ToolCallPart("b", "raises", ""),
    ]
    outcome = await tool_loop.step(calls)
    assert outcome.parts == (
        *calls,
        ToolResultPart("a", "echo telegram bot api 10", "echo"),
        ToolResultPart("b", outcome.results[1].content_text, "raises", True),
    )
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
    await tool_loop.step([ToolCallPart("a", "echo", "{}")])
    assert not tool_loop.tools_allowed
    outcome = await tool_loop.step(
        [ToolCallPart("b", "echo", "{}"), ToolCallPart("c", "echo", "{}")]
    )
    assert outcome.stopped
    assert [r.status for r in outcome.results] == ["step_limit", "step_limit"]
    assert [r.call_id for r in outcome.results] == ["b", "c"]


async def test_loop_deadline_stops_tools() -> None:
    now = [100.0]
    tool_loop = loop(steps=10, seconds=5.0, clock=lambda: now[0])
    await tool_loop.step([ToolCallPart("a", "echo", "{}")])
    now[0] = 106.0
    assert not tool_loop.tools_allowed
    outcome = await tool_loop.step([ToolCallPart("b", "echo", "{}")])
    assert outcome.results[0].status == "step_limit"
    assert "time for tools" in outcome.results[0].content_text


async def test_stop_cancels_a_running_step() -> None:
    reg = registry()
    hangs = Hangs()
    reg.add(ToolSpec("hangs", "Hangs."), hangs)
    tool_loop = ToolLoop(ToolRunner(reg, timeout=60, max_result_bytes=100), CONTEXT, 3, 60)
    task = asyncio.create_task(tool_loop.step([ToolCallPart("a", "hangs", "{}")]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hangs.cancelled


def test_argument_preview_takes_the_first_text_argument() -> None:
    assert argument_preview(ToolCallPart("a", "s", '{"n": 3, "query": "  a  b "}')) == "a b"
    assert argument_preview(ToolCallPart("a", "s", "{bad")) == ""
    long = argument_preview(ToolCallPart("a", "s", '{"q": "' + "x" * 100 + '"}'), limit=10)
    assert long == "x" * 9 + "…"


def call(*ids: str) -> ChatMessage:
    return ChatMessage("assistant", tuple(ToolCallPart(i, "t", "{}") for i in ids))


def answer(call_id: str, content: str = "ok") -> ChatMessage:
    return ChatMessage("tool", (ToolResultPart(call_id, content, "t"),))


USER = ChatMessage("user", "hi")


def test_every_call_is_answered_once_and_orphans_are_dropped() -> None:
    messages = (answer("x"), USER, call("a", "b"), answer("b"), answer("zz"), USER)
    sent = chat_body(ChatRequest("gpt-4o-mini", messages, 64), ENDPOINT)["messages"]
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in sent] == [
        ("user", None, "hi"),
        ("assistant", None, None),
        ("tool", "a", LOST_RESULT),
        ("tool", "b", "ok"),
        ("user", None, "hi"),
    ]


def test_a_reply_holding_two_steps_replays_in_order_on_both_apis() -> None:
    reply = ChatMessage(
        "assistant",
        (
            TextPart("Looking."),
            ToolCallPart("a", "search", '{"q": "x"}'),
            ToolResultPart("a", "found x", "search"),
            ToolCallPart("b", "fetch", "{}"),
            ToolResultPart("b", "page", "fetch"),
            TextPart("Here it is."),
        ),
    )
    request = ChatRequest("gpt-4o-mini", (USER, reply), 64)
    chat = chat_body(request, ENDPOINT)["messages"]
    assert [(m["role"], m["content"]) for m in chat] == [
        ("user", "hi"),
        ("assistant", "Looking."),
        ("tool", "found x"),
        ("assistant", None),
        ("tool", "page"),
        ("assistant", "Here it is."),
    ]
    items = responses_body(request, ENDPOINT)["input"]
    assert [i.get("type") or i["role"] for i in items] == [
        "user",
        "assistant",
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
        "assistant",
    ]


class _History:
    def __init__(self, items: list[HistoryItem]) -> None:
        self._items = iter(items)

    def __aiter__(self) -> _History:
        return self

    async def __anext__(self) -> HistoryItem:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


async def test_old_large_results_become_stubs_first() -> None:
    counter = TokenCounter("gpt-4o-mini")
    big = "z " * 5_000

    def exchange(id_: int, call_id: str) -> HistoryItem:
        parts = counter.counted((ToolCallPart(call_id, "t", "{}"), ToolResultPart(call_id, big)))
        return HistoryItem(id_, "assistant", big, counter.count_content("assistant", parts), parts)

    question = HistoryItem(1, "user", "hi", counter.count_message("user", "hi"))
    new = HistoryItem(9, "user", "more", counter.count_message("user", "more"))
    history = [exchange(4, "b"), question, exchange(2, "a"), question]
    prompt = await build_prompt(
        system_prompt="", new_message=new, history=_History(history), budget=20_000, counter=counter
    )
    older, newer = prompt.messages[1], prompt.messages[3]
    assert isinstance(older.content, tuple) and isinstance(newer.content, tuple)
    assert older.content[1].text == "[old tool result of 10000 bytes dropped to save space]"
    assert newer.content[1].text == big
    assert prompt.tokens < 2 * history[0].tokens


async def test_each_call_reports_its_end_as_it_ends() -> None:
    reg = registry()
    reg.add(ToolSpec("hangs", "Hangs.", timeout=0.2), Hangs())
    seen: list[tuple[str, str]] = []

    async def on_status(status: ToolStatus) -> None:
        seen.append((status.call_id, status.phase))

    tool_loop = ToolLoop(runner(reg), CONTEXT, max_steps=2, timeout=60, on_status=on_status)
    await tool_loop.step([ToolCallPart("slow", "hangs", "{}"), ToolCallPart("fast", "echo", "{}")])
    assert seen == [
        ("slow", "running"),
        ("fast", "running"),
        ("fast", "done"),
        ("slow", "failed"),
    ], "the fast call's line is done while the slow one still runs"
