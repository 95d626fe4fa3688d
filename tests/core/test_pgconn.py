"""The components' Postgres pool: one round trip per query, nothing left open."""

from __future__ import annotations

from pydantic import SecretStr

from herald.core import pgconn
from herald.core.settings import DatabaseSettings


async def test_a_released_connection_gets_no_reset_query(database: str) -> None:
    settings = DatabaseSettings(url=SecretStr(database), min_connections=1, max_connections=1)
    pool = await pgconn.create_pool(settings)
    try:
        async with pool.acquire() as connection:
            await connection.execute("SET application_name = 'kept'")
        # RESET ALL, had it been sent on release, would have cleared the setting.
        assert await pool.fetchval("SHOW application_name") == "kept"
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(database: str) -> None:
    settings = DatabaseSettings(url=SecretStr(database), min_connections=1, max_connections=1)
    pool = await pgconn.create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as connection:
            await connection.execute("BEGIN; CREATE TABLE left_open (x int)")
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT to_regclass('left_open')") is None
    finally:
        await pool.close()
