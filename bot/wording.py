"""The bot's sentences for the codes the core reports (`bot.notices`, errors' `problem`).

Frontends render through `render`; the core never builds a user-facing string. One table,
so that translations (gettext catalogs, later) replace it in one place.
"""

from __future__ import annotations

from bot.notices import Code, Notice

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
