"""The bot's sentences for the codes the core reports (`bot.notices`, errors' `problem`).

Frontends render through `render`; the core never builds a user-facing string. One table,
so that translations (gettext catalogs, later) replace it in one place.
"""

from __future__ import annotations

from bot.notices import Code, Notice
from bot.tools.loop import ToolStatus

SENTENCES: dict[str, str] = {
    Code.CUT_BY_LIMIT: "[The reply was cut off at the token limit.]",
    Code.INTERRUPTED: "[The reply was interrupted: {reason}]",
    Code.STOPPED: "[Stopped.]",
    Code.STOPPED_EARLY: "Stopped before any reply.",
    Code.EMPTY_REPLY: "The model returned an empty reply. Please try rephrasing your message.",
    Code.LENGTH_BOUND: "[The reply was stopped: it reached the length limit.]",
    Code.MESSAGES_BOUND: "[The reply was stopped: it reached the message limit.]",
    Code.TIME_BOUND: "[The reply was stopped: it reached the time limit.]",
    Code.RESTARTED: "[The reply was interrupted: the bot restarted.]",
    Code.TOO_LONG: (
        "Your message is too long for me ({tokens} tokens; the limit is {limit}). "
        "Please shorten it or send it in parts."
    ),
    Code.TOO_FAST: (
        "You're sending messages too fast (limit: {limit} per minute). "
        "Please wait a minute and try again."
    ),
    Code.QUOTA_USED: "You've used today's quota of {limit} tokens. It resets at midnight UTC.",
    # the model endpoint's failures (bot.errors, `problem`)
    "llm_unavailable": (
        "The language model is unavailable right now. Please try again in a moment."
    ),
    "llm_unreachable": "I couldn't reach the language model. Please try again in a moment.",
    "llm_timeout": "The language model took too long to answer. Please try again.",
    "llm_unreadable": "The language model sent a reply I couldn't read. Please try again.",
    "llm_auth": "The language model refused the bot's API key. Please tell the bot's admin.",
    "llm_not_found": (
        "The configured model does not exist on the server. Please tell the bot's admin."
    ),
    "llm_bad_request": "The language model rejected the request. Please tell the bot's admin.",
    "context_length": "The conversation is too long for the model. Try /reset to start fresh.",
    "llm_rate_limited": (
        "The language model is rate-limited right now. Please try again in a minute."
    ),
    "llm_server": "The language model is having trouble right now. Please try again in a moment.",
    # attachments: bot.media error codes (one line each, the conversation goes on)
    "too_big": "That file is too big for me: I can take files up to {limit}.",
    "not_found": "Telegram no longer has that file. Please send it again.",
    "no_file": "Telegram sent that message without its file. Please send it again.",
    "download_failed": "I couldn't download that file from Telegram. Please try again.",
    "corrupt": "I couldn't read that image: the file looks damaged or incomplete.",
    "decompression_bomb": "That file unpacks to far more than its size, so I won't open it.",
    "unsupported": (
        "I can't read {kind} messages. Send me text, a photo, a voice message or a document."
    ),
    "unsupported_file": (
        "I can't read this kind of file ({mime}). I read photos, text files, PDF and DOCX."
    ),
    "not_configured": (
        "I can't listen to recordings here: no transcription server is configured. "
        "Please send text."
    ),
    "transcription_failed": (
        "The transcription server failed, so I couldn't understand that recording. "
        "Please try again or send text."
    ),
    "audio_too_big": (
        "That recording is too big to transcribe (the limit is {limit}). Please send a shorter one."
    ),
    "unsupported_audio": "I couldn't read the audio of that recording (unknown or damaged format).",
    "encrypted": "That PDF is password-protected, so I can't read it. Please send it unlocked.",
    "scanned": (
        "That PDF has no text layer (it is a scan of {pages} pages) and this model can't see "
        "images, so I can't read it."
    ),
    "broken": "I couldn't open that document: the file looks damaged.",
    "empty": "I found nothing readable in that file.",
    "too_slow": (
        "That document took too long to read (over {seconds:g} s), so I stopped. "
        "Please send a smaller file or the part you need."
    ),
    "empty_transcript": "I couldn't hear any words in that recording.",
    # attachments: notes shown above the answer
    "no_vision": "(This model can't see images: I only have the caption and the file's name.)",
    "truncated": (
        "(The document is longer than I can read at once: I kept about {percent}% of it.)"
    ),
    "skipped": "(One item of the album couldn't be read and was left out.)",
    "scanned_as_images": "(That PDF has no text layer: I'm looking at its first pages as images.)",
    "no_caption": "I've read {name}. What should I do with it?",
}
UNKNOWN = "Something went wrong. Please try again."
REASONS = frozenset({"reason"})  # values that are codes themselves, rendered in turn


def render(notice: Notice | str) -> str:
    """The sentence for a notice (or a bare code), its values filled in."""
    if isinstance(notice, str):
        notice = Notice(notice)
    template = SENTENCES.get(notice.code)
    if template is None:
        return UNKNOWN
    values = {
        name: render(str(value)) if name in REASONS else value
        for name, value in notice.values.items()
    }
    return template.format(**values)


def appended(text: str, notice: Notice | None) -> str:
    """A reply's text with the notice of why it ended early after it, if there is one."""
    if notice is None:
        return text
    return f"{text}\n\n{render(notice)}" if text.strip() else render(notice)


# The live view of tool calls: one line per call while it runs, then how it ended.
TOOL_RUNNING = "🔧 `{name}`{preview}…"
TOOL_ENDED = {"done": "✅ `{name}`{preview}", "failed": "⚠️ `{name}`{preview}: {why}"}
TOOL_WHY = {
    "tool_error": "the tool reported an error",
    "failed": "failed",
    "timeout": "timed out",
    "unknown_tool": "no such tool",
    "bad_arguments": "bad arguments",
    "declined": "declined",
    "unavailable": "its server is unavailable",
    "step_limit": "the tool step limit was reached",
    "stopped": "stopped",
}
TOOL_LINES_SHOWN = 10
MARKUP = str.maketrans({"`": "'", "*": "·", "_": " ", "[": "(", "]": ")"})


def tool_line(status: ToolStatus) -> str:
    """One call as its status line: '🔧 `search`: «telegram bot api 10»…', then ✅ or ⚠️."""
    preview = f": «{status.preview.translate(MARKUP)}»" if status.preview else ""
    values = {"name": status.name, "preview": preview}
    if status.phase == "running":
        return TOOL_RUNNING.format(**values)
    why = TOOL_WHY.get(status.result.status if status.result else "step_limit", "failed")
    return TOOL_ENDED[status.phase].format(**values, why=why)


def tool_lines(calls: tuple[ToolStatus, ...]) -> str:
    """The status lines of a reply's calls (the newest ones, when there are many)."""
    lines = [tool_line(status) for status in calls[-TOOL_LINES_SHOWN:]]
    if len(calls) > TOOL_LINES_SHOWN:
        lines.insert(0, f"… {len(calls) - TOOL_LINES_SHOWN} earlier calls")
    return "\n".join(lines)


def tool_details(calls: tuple[ToolStatus, ...]) -> str:
    """The calls' arguments and result excerpts, for the collapsed view (SHOW_REASONING)."""
    blocks = []
    for status in calls[-TOOL_LINES_SHOWN:]:
        block = f"{status.name}({status.arguments})"
        if status.result is not None:
            block += f"\n→ {status.result_excerpt()}"
        blocks.append(block)
    return "\n\n".join(blocks)
