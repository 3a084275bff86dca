"""Replaying stored tool exchanges in a prompt without upsetting strict servers.

OpenAI rejects a ``tool`` message that answers no call of the assistant message right
before it, and an assistant message whose calls are not all answered before the next
message. So history is trimmed by whole units (`exchange_units`: an assistant message with
its calls and their answers, or one other message), calls whose answers were lost (a crash
mid-step) get a stub answer, answers whose call is gone are dropped (`repair`), and large
results of older exchanges shrink to a short stub first (`stub_old_results`). Messages are
chat/completions dicts; the Responses API items follow from them one to one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.tools.types import JSON, JSONObject

LOST_RESULT = "Error: no result was recorded for this call (the turn was interrupted)."
STUB = "[old tool result of {size} bytes dropped to save space]"


def _call_ids(message: JSONObject) -> list[str]:
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not isinstance(calls, list):
        return []
    return [str(c.get("id")) for c in calls if isinstance(c, dict)]


def repair(messages: Sequence[JSONObject]) -> list[JSONObject]:
    """The messages with each call answered once, in place, and no orphaned answers."""
    out: list[JSONObject] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        ids = _call_ids(message)
        if message.get("role") == "tool":
            continue  # an answer not right after its call: orphaned
        out.append(message)
        if not ids:
            continue
        answers: dict[str, JSONObject] = {}
        while index < len(messages) and messages[index].get("role") == "tool":
            answer = messages[index]
            call_id = str(answer.get("tool_call_id"))
            if call_id in ids and call_id not in answers:
                answers[call_id] = answer
            index += 1
        for call_id in ids:
            lost: JSONObject = {"role": "tool", "tool_call_id": call_id, "content": LOST_RESULT}
            out.append(answers.get(call_id, lost))
    return out


def exchange_units(messages: Sequence[JSONObject]) -> list[list[JSONObject]]:
    """The messages grouped into units a trimmer keeps or drops whole (oldest first)."""
    units: list[list[JSONObject]] = []
    for message in repair(messages):
        if message.get("role") == "tool" and units:
            units[-1].append(message)
        else:
            units.append([message])
    return units


def stub_old_results(
    messages: Sequence[JSONObject], *, keep_last: int = 1, max_bytes: int = 2_000
) -> list[JSONObject]:
    """Tool results over ``max_bytes`` replaced by a stub, except in the newest
    ``keep_last`` exchanges (the model usually still needs what it just fetched)."""
    units = exchange_units(messages)
    with_calls = [i for i, unit in enumerate(units) if len(unit) > 1]
    recent = set(with_calls[-keep_last:]) if keep_last > 0 else set()
    out: list[JSONObject] = []
    for i, unit in enumerate(units):
        for message in unit:
            content = message.get("content")
            if (
                i not in recent
                and message.get("role") == "tool"
                and isinstance(content, str)
                and len(content.encode()) > max_bytes
            ):
                stub: JSON = STUB.format(size=len(content.encode()))
                message = {**message, "content": stub}
            out.append(message)
    return out
