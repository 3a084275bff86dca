"""A Telegram chat bot with SQL conversation memory and streamed OpenAI-compatible replies."""

__version__ = "0.1.0"
