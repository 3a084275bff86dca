"""The media pipeline from the settings: one TelegramFiles, the default Transcriber and one per
profile with its own transcription settings, one MediaProcessor (the runtime makes it once).

A key goes only to its own server: OPENAI_API_KEY to OPENAI_BASE_URL (bot.config), a profile's
`api_key` to its `base_url`, a `transcription_api_key` to its `transcription_base_url`.
"""

from __future__ import annotations

import dataclasses

import httpx

from bot.config import Settings
from bot.media.audio import Transcriber
from bot.media.download import TelegramFiles
from bot.media.options import MediaOptions
from bot.media.prepare import MediaProcessor
from bot.model_profile import ModelProfile


def transcriber(http: httpx.AsyncClient, options: MediaOptions) -> Transcriber:
    return Transcriber(
        http,
        base_url=options.transcription_base_url,
        api_key=options.transcription_api_key,
        model=options.transcription_model,
        language=options.transcription_language,
        timeout=options.transcription_timeout,
        max_bytes=options.transcription_max_bytes,
    )


def profile_options(options: MediaOptions, profile: ModelProfile) -> MediaOptions | None:
    """A profile's own transcription settings over the defaults; None when it has none."""
    base_url = profile.transcription_base_url
    if base_url is None and profile.transcription_model is None:
        return None
    model = profile.transcription_model or options.transcription_model
    if base_url is None:
        return dataclasses.replace(options, transcription_model=model)
    key = profile.transcription_api_key
    if key is None and base_url == profile.base_url:
        key = profile.api_key
    return dataclasses.replace(
        options,
        transcription_model=model,
        transcription_base_url=base_url,
        transcription_api_key=key.get_secret_value() if key else "",
    )


def media_processor(settings: Settings, http: httpx.AsyncClient) -> MediaProcessor:
    """The process's MediaProcessor; `transcribers` holds the profiles' own."""
    options = MediaOptions.from_settings(settings)
    token = settings.telegram_bot_token.get_secret_value()
    files = TelegramFiles(http, settings.telegram_base_url, token, max_bytes=options.max_bytes)
    processor = MediaProcessor(files, transcriber(http, options), options)
    for name, profile in settings.model_profiles.items():
        own = profile_options(options, profile)
        if own is not None:
            processor.transcribers[name] = transcriber(http, own)
    return processor
