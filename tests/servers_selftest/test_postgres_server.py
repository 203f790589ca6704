"""The PostgreSQL launcher's optional server settings: pg_stat_statements preloaded counts statements;
without settings the cluster has no preloaded library (the tests' default is unchanged)."""

import pytest

from tests.servers.postgres import postgres_server

pytestmark = pytest.mark.postgres


def _connect(port: int, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, autocommit=True)


def test_pg_stat_statements_preloaded_counts_the_statements_of_a_database() -> None:
    with postgres_server({"shared_preload_libraries": "pg_stat_statements"}) as pg:
        name = pg.create_database().rsplit("/", 1)[1]
        with _connect(pg.port, name) as connection:
            connection.execute("CREATE EXTENSION pg_stat_statements")
            connection.execute("SELECT pg_stat_statements_reset()")
            for n in range(3):
                connection.execute("SELECT %s::int + 1", (n,))
            calls = connection.execute(
                "SELECT calls FROM pg_stat_statements JOIN pg_database d ON d.oid = dbid "
                "WHERE d.datname = %s AND query LIKE 'SELECT $1::int + $2%%'", (name,)).fetchone()
        assert calls == (3,)  # three executions of one normalised statement


def test_default_cluster_preloads_nothing_and_a_bad_setting_is_refused() -> None:
    with postgres_server() as pg, _connect(pg.port) as connection:
        assert connection.execute("SHOW shared_preload_libraries").fetchone() == ("",)
    with pytest.raises(ValueError, match="shared_preload_libraries"):
        with postgres_server({"shared_preload_libraries": "a b"}):
            pass
