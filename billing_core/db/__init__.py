"""The billing database: engine and sessions, SQLAlchemy models, Alembic migrations and the
bulk insert the cycle and the demo seed share."""
