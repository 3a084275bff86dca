"""The Telegram frontend: python-telegram-bot wiring, handlers and the streamed reply."""
