"""In-process HTTP emulators of the Telegram Bot API and of an OpenAI-compatible server, shared
by tests/ and bench/. Not part of the installed package."""
