"""Conversation exports: Markdown to read, and JSONL in OpenAI's fine-tuning chat format.

A message of parts goes to the JSONL as the chat API gets it: images as `image_url` items
with `data:` URLs (what the fine-tuning chat format accepts), tool calls and results as the
assistant's `tool_calls` and `tool` messages; to the Markdown as its text form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from bot.db.userdata import ExportedConversation
from bot.llm.bodies import chat_messages
from bot.llm.types import ChatMessage
from bot.parts import as_prompt_text


def to_jsonl(conversations: Iterable[ExportedConversation]) -> str:
    """One `{"messages": [...]}` line per conversation that has at least one answer."""
    lines = []
    for conversation in conversations:
        messages = chat_messages(
            ChatMessage(role, content) for role, content in conversation.messages
        )
        if any(m["role"] == "assistant" for m in messages):
            lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def to_markdown(conversations: Iterable[ExportedConversation]) -> str:
    out = ["# Conversation history\n"]
    for conversation in conversations:
        out.append(f"\n## Conversation {conversation.id} (started {conversation.started_at})\n")
        for role, content in conversation.messages:
            text = as_prompt_text(content)
            out.append(f"\n**{'You' if role == 'user' else 'Bot'}:**\n\n{text}\n")
    return "".join(out)
