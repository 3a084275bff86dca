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

    #: What went wrong, as a code the frontend puts into words (`bot.wording`).
    problem = "llm_unavailable"
    #: Whether trying the same request again may succeed.
    retryable = False


class LLMConnectionError(LLMError):
    """Could not connect, or the connection broke mid-answer."""

    problem = "llm_unreachable"
    retryable = True


class LLMTimeoutError(LLMError):
    """The server sent nothing within the read timeout."""

    problem = "llm_timeout"
    # Not retried: the user has already waited a whole read timeout.


class LLMProtocolError(LLMError):
    """The server answered with something that is not the chat/completions API."""

    problem = "llm_unreadable"


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
    problem = "llm_auth"


class LLMNotFoundError(LLMStatusError):
    problem = "llm_not_found"


class LLMBadRequestError(LLMStatusError):
    problem = "llm_bad_request"


class ContextLengthError(LLMBadRequestError):
    problem = "context_length"


class LLMRateLimitError(LLMStatusError):
    problem = "llm_rate_limited"
    retryable = True


class LLMServerError(LLMStatusError):
    problem = "llm_server"
    retryable = True
