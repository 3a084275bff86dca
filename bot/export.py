"""Conversation exports: Markdown to read, and JSONL in OpenAI's fine-tuning chat format."""

from __future__ import annotations

import json
from collections.abc import Iterable

from bot.db.userdata import ExportedConversation


def to_jsonl(conversations: Iterable[ExportedConversation]) -> str:
    """One `{"messages": [...]}` line per conversation that has at least one answer."""
    lines = []
    for conversation in conversations:
        messages = [{"role": role, "content": content} for role, content in conversation.messages]
        if any(m["role"] == "assistant" for m in messages):
            lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def to_markdown(conversations: Iterable[ExportedConversation]) -> str:
    out = ["# Conversation history\n"]
    for conversation in conversations:
        out.append(f"\n## Conversation {conversation.id} (started {conversation.started_at})\n")
        for role, content in conversation.messages:
            out.append(f"\n**{'You' if role == 'user' else 'Bot'}:**\n\n{content}\n")
    return "".join(out)
