"""The bot's exception tree, one root so callers can catch what they can explain.

BotError
├── ConfigError              a setting is missing or malformed
├── StorageError             the database refused or lost a write
└── LLMError                 the model endpoint failed
    ├── LLMConnectionError   could not connect, or the connection broke
    ├── LLMTimeoutError      no byte within the read timeout
    ├── LLMProtocolError     the server sent something that is not the API
    └── LLMStatusError       an HTTP error answer (status, code, retry_after)
        ├── LLMAuthError         401 / 403: bad or missing API key
        ├── LLMNotFoundError     404: unknown model or wrong base URL
        ├── LLMBadRequestError   400 / 422 (ContextLengthError for a too-long prompt)
        ├── LLMRateLimitError    429
        └── LLMServerError       5xx
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or malformed; the message names it."""


class StorageError(BotError):
    """The database failed in a way the caller should report."""


class LLMError(BotError):
    """The model endpoint failed."""

    #: One sentence a chat user understands.
    user_message = "The language model is unavailable right now. Please try again in a moment."
    #: Whether trying the same request again may succeed.
    retryable = False


class LLMConnectionError(LLMError):
    """Could not connect, or the connection broke mid-answer."""

    user_message = "I couldn't reach the language model. Please try again in a moment."
    retryable = True


class LLMTimeoutError(LLMError):
    """The server sent nothing within the read timeout."""

    user_message = "The language model took too long to answer. Please try again."
    # Not retried: the user has already waited a whole read timeout.


class LLMProtocolError(LLMError):
    """The server answered with something that is not the chat/completions API."""

    user_message = "The language model sent a reply I couldn't read. Please try again."


class LLMStatusError(LLMError):
    """An HTTP error answer, with the API's error code when the body had one."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.code = code
        self.retry_after = retry_after


class LLMAuthError(LLMStatusError):
    user_message = "The language model refused the bot's API key. Please tell the bot's admin."


class LLMNotFoundError(LLMStatusError):
    user_message = "The configured model does not exist on the server. Please tell the bot's admin."


class LLMBadRequestError(LLMStatusError):
    user_message = "The language model rejected the request. Please tell the bot's admin."


class ContextLengthError(LLMBadRequestError):
    user_message = "The conversation is too long for the model. Try /reset to start fresh."


class LLMRateLimitError(LLMStatusError):
    user_message = "The language model is rate-limited right now. Please try again in a minute."
    retryable = True


class LLMServerError(LLMStatusError):
    user_message = "The language model is having trouble right now. Please try again in a moment."
    retryable = True
