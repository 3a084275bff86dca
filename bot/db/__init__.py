"""Storage: typed ORM models, the engine factory, migrations and the queries a turn needs."""
