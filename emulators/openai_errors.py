"""OpenAI-shaped error bodies and request validation for the OpenAI emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VALID_ROLES = ("system", "developer", "user", "assistant", "tool")
INVALID_REQUEST = "invalid_request_error"


class ApiError(Exception):
    """An error the emulator answers with: HTTP status, OpenAI error object, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


# --- canned errors -------------------------------------------------------------------------


def mask_key(key: str) -> str:
    """Mask an API key the way OpenAI does in its 401 message (``sk-wr***ng``)."""
    return f"{key[:5]}***{key[-2:]}"


def missing_key_error() -> ApiError:
    """401 for a request without a bearer token."""
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
        "field (with blank username) if you're accessing the API from your browser and are "
        "prompted for a username and password. You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.",
    )


def invalid_key_error(key: str) -> ApiError:
    """401 for a wrong API key."""
    return ApiError(
        401,
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def model_not_found_error(model: str) -> ApiError:
    """404 for an unknown model."""
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def context_length_error(window: int, prompt: int, completion: int) -> ApiError:
    """400 when prompt + requested completion exceed the context window."""
    return ApiError(
        400,
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the "
        "completion). Please reduce the length of the messages or completion.",
        param="messages",
        code="context_length_exceeded",
    )


def invalid_json_error() -> ApiError:
    """400 for a body that is not a JSON object."""
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
        "what was sent was not valid JSON. If you have trouble figuring out how to fix this, "
        "please contact us through our help center at help.openai.com.)",
    )


def not_found_path_error(method: str, path: str) -> ApiError:
    """404 for an unknown endpoint."""
    return ApiError(404, f"Invalid URL ({method} {path})")


RATE_LIMIT_MESSAGE = (
    "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
    "Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
    "to learn more."
)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
OVERLOADED_MESSAGE = "The engine is currently overloaded, please try again later."


def stock_error(status: int, api_key: str, model: str) -> ApiError:
    """OpenAI's usual error for ``status`` (used for scripted ``Reply.status`` faults)."""
    if status == 401:
        return invalid_key_error(api_key)
    if status == 404:
        return model_not_found_error(model)
    if status == 429:
        return ApiError(429, RATE_LIMIT_MESSAGE, type="requests", code="rate_limit_exceeded")
    if status == 500:
        return ApiError(500, SERVER_ERROR_MESSAGE, type="server_error")
    if status == 503:
        return ApiError(503, OVERLOADED_MESSAGE, type="server_error")
    if status >= 500:
        return ApiError(status, f"Upstream error {status}.", type="server_error")
    return ApiError(status, f"Request rejected with status {status}.")


def scripted_error(
    status: int,
    *,
    message: str | None,
    type_: str | None,
    code: str | None,
    retry_after: float | None,
    api_key: str,
    model: str,
) -> ApiError:
    """The error for a scripted fault: the stock body with any overrides applied."""
    error = stock_error(status, api_key, model)
    if message is not None:
        error.message = message
    if type_ is not None:
        error.type = type_
    if code is not None:
        error.code = code
    if retry_after is not None:
        error.headers["Retry-After"] = _format_seconds(retry_after)
    return error


def _format_seconds(value: float) -> str:
    """Render a Retry-After value without a useless ``.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


# --- parameter validation ----------------------------------------------------------------------


def _type_name(value: Any) -> str:
    """OpenAI's wording for the JSON type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _bad_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
    )


def _missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(param: str, value: Any, low: float | None, high: float | None, kind: str) -> None:
    if low is not None and value < low:
        raise ApiError(
            400,
            f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            param=param,
        )
    if high is not None and value > high:
        raise ApiError(
            400,
            f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            param=param,
        )


def _number(low: float, high: float) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not _is_number(value):
            raise _bad_type(param, "a decimal", value)
        _check_range(param, value, low, high, "decimal")

    return check


def _integer(low: int | None, high: int | None) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not _is_int(value):
            raise _bad_type(param, "an integer", value)
        _check_range(param, value, low, high, "integer")

    return check


def _of_type(kind: type, expected: str) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _bad_type(param, expected, value)

    return check


def _check_stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _bad_type(param, "one of a string or array of strings", value)
    if len(value) > 4:
        raise ApiError(
            400,
            f"Invalid '{param}': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(value)} instead.",
            param=param,
        )


COMMON_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _integer(1, None),
    "max_completion_tokens": _integer(1, None),
    "n": _integer(1, 128),
    "stop": _check_stop,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "seed": _integer(None, None),
    "logit_bias": _of_type(dict, "an object"),
    "user": _of_type(str, "a string"),
    "stream": _of_type(bool, "a boolean"),
}


def validate_common(body: dict[str, Any]) -> None:
    """Check model presence and the sampling/streaming parameters shared by both endpoints."""
    model = body.get("model")
    if model is None:
        raise ApiError(400, "you must provide a model parameter", param="model")
    if not isinstance(model, str):
        raise _bad_type("model", "a string", model)
    for name, check in COMMON_CHECKS.items():
        if body.get(name) is not None:
            check(name, body[name])
    _validate_stream_options(body)


def _validate_stream_options(body: dict[str, Any]) -> None:
    options = body.get("stream_options")
    if options is None:
        return
    if body.get("stream") is not True:
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if not isinstance(options, dict):
        raise _bad_type("stream_options", "an object", options)
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise _bad_type("stream_options.include_usage", "a boolean", include)


def validate_chat(body: dict[str, Any]) -> None:
    """Validate a ``/v1/chat/completions`` body like OpenAI does (raises ``ApiError``)."""
    validate_common(body)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _bad_type("messages", "an array", messages)
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
        )
    for index, message in enumerate(messages):
        _validate_message(f"messages[{index}]", message)
    # Tool calls and their results are paired by openai_tools.validate_chat_tools.


def _validate_message(where: str, message: Any) -> None:
    if not isinstance(message, dict):
        raise _bad_type(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if role not in VALID_ROLES:
        supported = ", ".join(f"'{r}'" for r in VALID_ROLES)
        raise ApiError(
            400,
            f"Invalid value: '{role}'. Supported values are: {supported}.",
            param=f"{where}.role",
        )
    if "content" not in message:
        if role == "assistant":
            return
        raise _missing(f"{where}.content")
    _validate_content(f"{where}.content", message["content"], role)


def _validate_content(where: str, content: Any, role: str) -> None:
    if content is None and role == "assistant":
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad_type(where, "one of a string or array of objects", content)
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad_type(f"{where}[{index}]", "an object with a 'type'", part)
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise _bad_type(f"{where}[{index}].text", "a string", part.get("text"))


def validate_legacy(body: dict[str, Any]) -> None:
    """Validate a ``/v1/completions`` body (``prompt`` is a string or list of strings)."""
    validate_common(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return
    if not isinstance(prompt, str):
        raise _bad_type("prompt", "one of a string or array of strings", prompt)
