"""Provider rules the OpenAI emulator enforces: Azure OpenAI's auth and api-version, and the
parameters reasoning models refuse."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.openai_errors import ApiError


def check_azure(
    headers: Mapping[str, str], query: Mapping[str, str], api_key: str, api_version: str
) -> None:
    """Azure wants ``api-key`` (not Bearer) and the ``api-version`` it serves."""
    version = query.get("api-version")
    if version is None:
        raise ApiError(404, "Resource not found", type="invalid_request_error", code="404")
    if version != api_version:
        raise ApiError(400, "Unsupported api-version. Please refer to the docs.", code="400")
    if headers.get("api-key") != api_key:
        raise ApiError(
            401,
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
            code="401",
        )


def check_reasoning_parameters(body: dict[str, Any], rejected: tuple[str, ...]) -> None:
    """Reasoning models refuse ``max_tokens`` and the sampling knobs, as OpenAI's do."""
    if "max_tokens" in body:
        raise ApiError(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    for name in rejected:
        if name in body:
            raise ApiError(
                400,
                f"Unsupported parameter: '{name}' is not supported with this model.",
                param=name,
                code="unsupported_parameter",
            )
