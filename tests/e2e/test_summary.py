"""Rolling summary end to end: turns that leave the budget are folded into a running summary."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from bot.conversation import Incoming
from bot.db import summaries
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import Summary, Usage
from bot.llm.client import ChatClient
from bot.notices import Notice
from bot.reply_sink import Final, ReplyEvent
from bot.telegram.app import BotRuntime
from bot.turn import Outcome, TurnRunner
from bot.values import ChatInfo, UserInfo
from bot.wording import appended, render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply, is_summary_request, summary_text
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows

ALICE = 1001
ADMIN = 4242
SUMMARY_HEADER = "Summary of the earlier conversation:"
SMALL_WINDOW = {"context_tokens": 700, "max_reply_tokens": 100, "edit_interval": 0.2}


def turn_text(i: int) -> str:
    return f"Message number {i}: tell me about topic {i} " + "and more " * (i % 5)


def split_requests(model: OpenAIEmulator) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(reply requests, summary requests) the model received, in order."""
    bodies = model.chat_requests()
    return (
        [b for b in bodies if not is_summary_request(b)],
        [b for b in bodies if is_summary_request(b)],
    )


async def stored(database_url: str, table: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(table).order_by(table.id)))
    finally:
        await engine.dispose()


async def wait_for_summaries(database_url: str, count: int) -> list[Summary]:
    async with asyncio.timeout(15):
        while True:  # written by a background job: poll the database
            rows = await stored(database_url, Summary)
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.05)


async def reach_first_summary(telegram: BotAPIEmulator, model: OpenAIEmulator) -> int:
    """Talk until the bot asks for its first summary; return the turns it took."""
    i = 0
    while not split_requests(model)[1]:
        i += 1
        await ask(telegram, ALICE, turn_text(i))
    return i


class CollectingSink:
    """Where the turn runner shows replies when driven without Telegram: it keeps them."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    async def begin(self) -> None:
        return None

    def show(self, event: ReplyEvent) -> None:
        return None

    async def finish(self, final: Final) -> list[int]:
        self.shown.append(appended(final.text, final.notice))
        return []

    async def say(self, notice: Notice) -> None:
        self.shown.append(render(notice))


def check_long_conversation(model: OpenAIEmulator, turns: int, budget: int, window: int) -> None:
    """Every prompt within budget, folds every few turns, the last prompt carrying a summary."""
    replies, summaries = split_requests(model)
    assert len(replies) == turns
    sizes = [model.count_prompt_tokens(r["messages"]) for r in replies]
    print(
        f"\n{turns} turns, budget {budget}: prompt tokens max {max(sizes)}, "
        f"median {statistics.median(sizes)}, summary calls {len(summaries)}"
    )
    assert max(sizes) <= budget
    assert all(
        model.count_prompt_tokens(s["messages"]) + s["max_tokens"] <= window for s in summaries
    )
    assert turns // 30 <= len(summaries) < turns // 2, "folds come every few turns, not every turn"
    last = replies[-1]["messages"]
    assert last[0]["role"] == "system" and SUMMARY_HEADER in last[0]["content"]
    assert [m["role"] for m in last[1:3]] == ["user", "assistant"]
    assert last[-1] == {"role": "user", "content": turn_text(turns)}
    # Nothing fell through a gap: the last fold ends right before the oldest message sent.
    oldest_sent = int(last[1]["content"].split()[2].rstrip(":"))
    if SUMMARY_HEADER + "\n" + summary_text(summaries[-1]["messages"]) in last[0]["content"]:
        covered = summary_text(summaries[-1]["messages"]).split("the last: ", 1)[1]
        assert covered.startswith("Assistant: Echo: Message number")
        assert int(covered.split()[4].rstrip(":")) + 1 == oldest_sent


async def test_a_300_turn_conversation_keeps_a_summary_within_a_2000_token_budget(
    make_settings: SettingsFactory, model: OpenAIEmulator, database_url: str
) -> None:
    """Driven through the turn runner (300 Telegram turns take minutes under its rate limits)."""
    settings = make_settings(context_tokens=2256, max_reply_tokens=256)
    model.context_windows["gpt-4o-mini"] = 2256
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    http = httpx.AsyncClient(timeout=10)
    client = ChatClient(http, base_url=model.base_url, api_key="sk-test-key")
    runner = TurnRunner(settings, create_sessionmaker(engine), client)
    sink = CollectingSink()
    try:
        for i in range(1, 301):
            incoming = Incoming(ChatInfo(ALICE), UserInfo(ALICE, "Alice"), turn_text(i), i)
            assert await runner.run(incoming, sink) is Outcome.ANSWERED
        await runner.summarizer.idle()
    finally:
        await runner.aclose()
        await http.aclose()
        await engine.dispose()
    assert sink.shown == [f"Echo: {turn_text(i)}" for i in range(1, 301)]
    check_long_conversation(model, 300, 2000, 2256)
    rows = await stored(database_url, Summary)
    assert len(rows) == len(split_requests(model)[1])
    assert rows[-1].first_message_id == rows[0].first_message_id == 1
    assert rows[-1].token_count > 0


async def test_a_long_telegram_conversation_keeps_a_summary_within_budget(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(context_tokens=856, max_reply_tokens=256, edit_interval=0.2)
    model.context_windows["gpt-4o-mini"] = 856
    async with BotRuntime(settings):
        for i in range(1, 41):
            await ask(telegram, ALICE, turn_text(i))
    check_long_conversation(model, 40, 600, 856)
    rows = await stored(database_url, Summary)
    assert rows and rows[-1].content in split_requests(model)[0][-1]["messages"][0]["content"]


async def test_the_summary_call_does_not_delay_replies(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    gate = asyncio.Event()

    def respond(body: dict[str, Any]) -> Reply:
        if is_summary_request(body):
            return Reply(text=summary_text(body["messages"]), hold=gate)
        return Reply(text="Echo: " + body["messages"][-1]["content"])

    model.responder = respond
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        i = await reach_first_summary(telegram, model)
        # The summary call is held open; the chat goes on regardless.
        for j in range(i + 1, i + 4):
            await ask(telegram, ALICE, turn_text(j))
        assert await stored(database_url, Summary) == []
        assert len(split_requests(model)[1]) == 1, "one summary job per chat at a time"
        gate.set()
        await wait_for_summaries(database_url, 1)
        await ask(telegram, ALICE, "and now?")
    replies, _ = split_requests(model)
    assert SUMMARY_HEADER in replies[-1]["messages"][0]["content"]
    assert all(SUMMARY_HEADER not in r["messages"][0]["content"] for r in replies[:-1])
    usage = await stored(database_url, Usage)
    assert [u.kind for u in usage].count("summary") == len(split_requests(model)[1])
    assert all(u.prompt_tokens > 0 for u in usage)


async def test_a_conversation_well_within_its_window_is_not_read_again_to_decide(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        async with BotRuntime(make_settings()) as runtime:
            for i in range(1, 4):
                await ask(telegram, ALICE, turn_text(i))
            assert runtime.runner is not None
            await runtime.runner.summarizer.idle()
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    summary_reads = [s for s in statements if "FROM summaries" in s]
    assert len(summary_reads) == 3, "one per prompt; the turn told the summarizer the rest"
    assert split_requests(model)[1] == []


async def test_a_failed_summary_call_changes_nothing_and_is_tried_again(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    failed: list[int] = []

    def respond(body: dict[str, Any]) -> Reply:
        if is_summary_request(body):
            if not failed:
                failed.append(1)
                return Reply(status=400, error_message="Invalid request")
            return Reply(text=summary_text(body["messages"]))
        return Reply(text="Echo: " + body["messages"][-1]["content"])

    model.responder = respond
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        i = 0
        while len(split_requests(model)[1]) < 2:
            i += 1
            await ask(telegram, ALICE, turn_text(i))
        await wait_for_summaries(database_url, 1)
    assert failed and all(m.text.startswith("Echo: ") for m in telegram.bot_messages(ALICE))


async def test_summary_can_be_switched_off_per_chat_by_an_admin(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(
        context_tokens=600, max_reply_tokens=100, edit_interval=0.2, admin_user_ids=str(ADMIN)
    )
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "/summary off")
        await telegram.wait_for(
            lambda: shows(telegram, ALICE, "Sorry, that command is for the bot's admins.")
        )
        telegram.send_text(ADMIN, "/summary off")
        await telegram.wait_for(lambda: shows(telegram, ADMIN, "Rolling summary here is now off."))
        for i in range(1, 16):
            await ask(telegram, ADMIN, turn_text(i))
            await ask(telegram, ALICE, turn_text(i))
        await asyncio.sleep(0.2)
        summarized = {b["user"] for b in split_requests(model)[1]}
        replies_by_user = {b["user"] for b in split_requests(model)[0]}
    assert len(summarized) == 1 and len(replies_by_user) == 2, "only Alice's chat is summarized"


async def test_memory_shows_the_summary_and_how_many_recent_messages_fit(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "/memory")
        empty = "I don't remember anything of this conversation yet."
        await telegram.wait_for(lambda: shows(telegram, ALICE, empty))
        await ask(telegram, ALICE, "hello")
        telegram.send_text(ALICE, "/memory")
        await telegram.wait_for(
            lambda: any("No summary yet" in t.text for t in telegram.bot_messages(ALICE))
        )
        assert "Recent messages I see word for word: 2 " in telegram.bot_messages(ALICE)[-1].text
        await reach_first_summary(telegram, model)
        [summary] = await wait_for_summaries(database_url, 1)
        telegram.send_text(ALICE, "/memory")
        await telegram.wait_for(lambda: summary.content in telegram.bot_messages(ALICE)[-1].text)
    answer = telegram.bot_messages(ALICE)[-1].text
    assert answer.startswith("Summary of our earlier conversation (")
    assert "Recent messages I see word for word: " in answer


async def test_shutdown_during_a_summary_call_stores_nothing_and_does_not_hang(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    gate = asyncio.Event()  # never set: the summary call stays open
    model.responder = lambda body: (
        Reply(text="never", hold=gate)
        if is_summary_request(body)
        else Reply(text="Echo: " + body["messages"][-1]["content"])
    )
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        await reach_first_summary(telegram, model)
    assert await stored(database_url, Summary) == []
    assert [u.kind for u in await stored(database_url, Usage)].count("summary") == 0


async def test_forget_deletes_the_summaries_that_may_quote_the_user(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        await reach_first_summary(telegram, model)
        await wait_for_summaries(database_url, 1)
        telegram.send_text(ALICE, "/forget")
        await telegram.wait_for(lambda: bool(telegram.bot_messages(ALICE)[-1].reply_markup))
        prompt = telegram.bot_messages(ALICE)[-1]
        telegram.press_button(ALICE, prompt.message_id, f"forget:{ALICE}:yes")
        await telegram.wait_for(lambda: "deleted" in telegram.bot_messages(ALICE)[-1].text.lower())
    assert await stored(database_url, Summary) == []


async def test_a_fold_based_on_an_outdated_summary_is_not_stored(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(**SMALL_WINDOW)
    async with BotRuntime(settings):
        await reach_first_summary(telegram, model)
        [first] = await wait_for_summaries(database_url, 1)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            base = await summaries.latest(session, first.conversation_id)
            fields = {
                "conversation_id": first.conversation_id,
                "first_message_id": 1,
                "last_message_id": first.last_message_id + 2,
                "content": "newer",
                "tokens": 5,
                "model": "gpt-4o-mini",
            }
            assert await summaries.add(session, based_on=base, **fields)
            await session.flush()
            assert not await summaries.add(session, based_on=base, **fields)
            assert not await summaries.add(session, based_on=None, **fields)
            newest = await summaries.latest(session, first.conversation_id)
            gone = {**fields, "last_message_id": 10**9}  # covers messages deleted meanwhile
            assert not await summaries.add(session, based_on=newest, **gone)
    finally:
        await engine.dispose()
    assert [row.content for row in await stored(database_url, Summary)][-1] == "newer"


@pytest.mark.parametrize(
    ("answer", "stored_rows"),
    [(Reply(text="Alice counts topics.", omit_usage=True), 1), (Reply(text=""), 0)],
    ids=["no-usage-reported", "empty-summary"],
)
async def test_summary_usage_is_recorded_even_when_the_server_reports_none(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    answer: Reply,
    stored_rows: int,
) -> None:
    model.responder = lambda body: (
        answer
        if is_summary_request(body)
        else Reply(text="Echo: " + body["messages"][-1]["content"])
    )
    async with BotRuntime(make_settings(**SMALL_WINDOW)):
        await reach_first_summary(telegram, model)
        await ask(telegram, ALICE, "one more")
    [usage] = [u for u in await stored(database_url, Usage) if u.kind == "summary"][:1]
    assert usage.prompt_tokens > 0 and usage.user_id == ALICE and usage.message_id is None
    assert usage.reported is (answer.omit_usage is False)
    assert len(await stored(database_url, Summary)) >= stored_rows
    if not stored_rows:
        assert await stored(database_url, Summary) == []
