"""The Redis launcher gives a real server whose append-only data survives a restart."""

from tests.servers.redis import redis_server, restart


def test_redis_data_survives_restart() -> None:
    import redis

    with redis_server() as server:
        client = redis.Redis.from_url(server.url)
        client.set("powerdesk:probe", "一百二十三元")
        restart(server)
        client = redis.Redis.from_url(server.url)
        assert client.get("powerdesk:probe").decode() == "一百二十三元"
