"""Files from Telegram: `getFile`, then the bytes from the file URL, streamed under a byte cap.

Both URLs carry the bot token, so neither is logged, stored or put in an exception: every
failure is translated here, once, to a DownloadError with a code, chained to nothing.
"""

from __future__ import annotations

import logging

import httpx

from bot.media.types import (
    DOWNLOAD_FAILED,
    NOT_FOUND,
    TOO_BIG,
    Attachment,
    DownloadError,
)

logger = logging.getLogger(__name__)

TOO_BIG_DESCRIPTION = "file is too big"  # Telegram's 400 for a file past 20 MB
GONE_DESCRIPTIONS = (
    "invalid file_id",
    "wrong file_id",
    "file not found",
    "temporarily unavailable",
)


class TelegramFiles:
    """Downloads attachments through the Bot API with the bot's own HTTP client."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: str, *, max_bytes: int
    ) -> None:
        """`base_url` is the Bot API root (TELEGRAM_BASE_URL, without `/bot`)."""
        self._http = http
        self._root = base_url.rstrip("/")
        self._token = token
        self.max_bytes = max_bytes

    def __repr__(self) -> str:  # never the token
        return f"TelegramFiles({self._root!r}, max_bytes={self.max_bytes})"

    async def download(self, attachment: Attachment) -> bytes:
        """The file's bytes; DownloadError (too_big, not_found, download_failed) otherwise."""
        if attachment.size is not None and attachment.size > self.max_bytes:
            raise DownloadError(TOO_BIG, size=attachment.size, limit=self.max_bytes)
        path = await self.file_path(attachment.file_id)
        data = await self._fetch(path)
        logger.debug("downloaded %d bytes of %s", len(data), attachment.file_unique_id)
        return data

    async def file_path(self, file_id: str) -> str:
        """`getFile(file_id).file_path`, the path of the file on Telegram's file server."""
        url = f"{self._root}/bot{self._token}/getFile"
        try:
            response = await self._http.post(url, json={"file_id": file_id})
        except httpx.HTTPError:
            raise DownloadError(DOWNLOAD_FAILED, status=0) from None
        try:
            body = response.json()
        except ValueError:
            raise DownloadError(DOWNLOAD_FAILED, status=response.status_code) from None
        if not isinstance(body, dict) or not body.get("ok"):
            raise _get_file_error(response.status_code, body)
        result = body.get("result")
        path = result.get("file_path") if isinstance(result, dict) else None
        if not isinstance(path, str) or not path:
            raise DownloadError(NOT_FOUND)  # Telegram answers without a path when it lost it
        return path

    async def _fetch(self, path: str) -> bytes:
        url = f"{self._root}/file/bot{self._token}/{path}"
        chunks: list[bytes] = []
        received = 0
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    raise DownloadError(NOT_FOUND)
                if response.status_code != 200:
                    raise DownloadError(DOWNLOAD_FAILED, status=response.status_code)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise DownloadError(TOO_BIG, size=int(declared), limit=self.max_bytes)
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > self.max_bytes:  # stop reading: never buffer past the cap
                        raise DownloadError(TOO_BIG, size=received, limit=self.max_bytes)
                    chunks.append(chunk)
        except httpx.HTTPError:
            raise DownloadError(DOWNLOAD_FAILED, status=0) from None
        return b"".join(chunks)


def _get_file_error(status: int, body: object) -> DownloadError:
    description = body.get("description", "") if isinstance(body, dict) else ""
    text = str(description).lower()
    if TOO_BIG_DESCRIPTION in text:
        return DownloadError(TOO_BIG)
    if status == 404 or any(gone in text for gone in GONE_DESCRIPTIONS):
        return DownloadError(NOT_FOUND)
    return DownloadError(DOWNLOAD_FAILED, status=status)
