"""Figure 6: what one tool call on a local MCP server adds to a turn.

Each turn is two model steps: the model calls ``local__search`` (the tests' MCP server, over
stdio), the bot runs it and asks again with the result, the model answers. Reported per turn:
*update received → final edit sent* minus the model's own time in both steps (request
received → last chunk written), so what remains is the bot's work on both steps, the MCP
round trip and Telegram's round trips.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.harness import (
    FINAL_METHODS,
    PROJECT_ROOT,
    Latency,
    ModelCall,
    TimedModel,
    bot_env,
    bot_process,
    delivered_at,
    fresh_database,
    percentiles,
    prompt_for,
    send_all,
    wait_replies,
)
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import Reply
from emulators.openai_tools import ScriptedCall, ToolCallsReply

FIRST_CHAT = 710_000_000
SERVER = {
    "name": "local",
    "command": sys.executable,
    "args": ["-m", "tests.mcp_servers.tools_server"],
    "cwd": PROJECT_ROOT,
}


class ToolModel(TimedModel):
    """Asks for one ``local__search`` of the question, then answers with the timed reply."""

    def _reply(self, body: dict[str, Any]) -> Reply:
        last = (body.get("messages") or [{}])[-1]
        if last.get("role") != "user":
            return super()._reply(body)
        arguments = json.dumps({"query": last.get("content", ""), "limit": 1})
        return ToolCallsReply(
            calls=[ScriptedCall("local__search", arguments)],
            chunk_chars=8,
            chunk_delay=1 / self.latency.tokens_per_second,
        )


def _model_seconds(call: ModelCall | None) -> float | None:
    if call is None or not call.tokens:
        return None
    return call.tokens[-1] - call.request_at


def _overhead(telegram: BotAPIEmulator, model: TimedModel, chat_id: int, turn: int) -> float | None:
    question = prompt_for(chat_id, turn)
    first = next((c for c in model.calls if c.key == question), None)
    second = next((c for c in model.calls if c.key == f"result 1 for {question}"), None)
    delivered = delivered_at(telegram.calls, chat_id, question)
    finals = [
        c.at - telegram.latency
        for c in telegram.calls
        if c.method in FINAL_METHODS and c.status == 200 and c.params.get("chat_id") == chat_id
    ]
    steps = [_model_seconds(first), _model_seconds(second)]
    if delivered is None or not finals or None in steps:
        return None
    return max(finals) - delivered - sum(s for s in steps if s is not None)


async def tool_turns(database: str, latency: Latency, chats: int, rounds: int) -> dict[str, Any]:
    """``rounds`` turns in each of ``chats`` chats at once, each with one MCP tool call."""
    async with (
        fresh_database(database) as url,
        BotAPIEmulator(latency=latency.telegram, rate_limits=False) as telegram,
        ToolModel(latency) as model,
    ):
        env = bot_env(telegram, model, url, builtin_tools="", mcp_servers=json.dumps([SERVER]))
        async with bot_process(env, open_limits=True):
            await telegram.wait_for(lambda: telegram.state.active_polls > 0, timeout=60)
            ids = [FIRST_CHAT + i for i in range(chats)]
            overheads: list[float | None] = []
            for turn in range(rounds):
                send_all(telegram, ids, turn)
                await wait_replies(telegram, dict.fromkeys(ids, turn + 1), model.text, 60)
                overheads += [_overhead(telegram, model, c, turn) for c in ids]
    return {
        "turns": chats * rounds,
        "update_to_final_minus_model": percentiles(overheads),
        "incomplete": sum(o is None for o in overheads),
    }
