"""What the bot runs on, around the core: the HTTP server (webhook, health, metrics), the
Prometheus collectors, the aiohttp transport, Bot API flood control and the update gate."""
