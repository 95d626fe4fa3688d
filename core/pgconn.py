"""The one way a component opens its Postgres pool: the DSN and pool bounds from
:class:`~herald.core.settings.DatabaseSettings`, and connections handed back without a
reset query.

asyncpg's pool sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
on every release: a second round trip for each query run on the pool. No Herald component
leaves session state on a pooled connection (no ``SET``, ``LISTEN``, cursors or advisory
locks: the migration lock is taken on a connection of its own), so the query resets nothing
and only doubles the round trips. At the paid rate that is a sender's ledger mark before
each send waiting twice as long, and Postgres' share of the machine's CPU. asyncpg still
rolls back a transaction left open, on its own, before any reset.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from herald.core.settings import DatabaseSettings

__all__ = ["create_pool"]


async def _no_reset(connection: asyncpg.Connection) -> None:
    del connection  # see the module's docstring


async def create_pool(
    database: DatabaseSettings,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    server_settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """The component's pool; `min_size`/`max_size` override the settings' bounds, and
    `server_settings` are set on each connection as it opens."""
    return await asyncpg.create_pool(
        database.url.get_secret_value(),
        min_size=database.min_connections if min_size is None else min_size,
        max_size=database.max_connections if max_size is None else max_size,
        reset=_no_reset,
        server_settings=dict(server_settings or {}),
    )
