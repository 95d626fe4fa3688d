"""The one way a component connects to NATS: the servers, its identity and TLS from
:class:`~herald.core.settings.NatsSettings`, and its own inbox prefix
(:func:`herald.core.permissions.inbox_prefix`), which its NATS user's permissions expect.

:func:`options` is pure (settings in, ``nats.connect`` keyword arguments out) so it is tested
without a server; :func:`connect` adds what touches the file system: the credential files
must exist, and the TLS files become an :class:`ssl.SSLContext`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from herald.core.permissions import Component, inbox_prefix
from herald.core.settings import NatsSettings

__all__ = ["NatsConfigError", "connect", "options", "tls_context"]


class NatsConfigError(ValueError):
    """The NATS settings name a file that cannot be used; permanent until fixed."""


def options(
    settings: NatsSettings,
    *,
    component: Component,
    name: str,
    tls: ssl.SSLContext | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments of ``nats.connect`` for ``component``; ``extra`` (e.g.
    ``max_reconnect_attempts``) is passed through and wins."""
    kwargs: dict[str, Any] = {
        "servers": settings.servers,
        "name": name,
        "inbox_prefix": inbox_prefix(component),
    }
    if settings.user is not None and settings.password is not None:
        kwargs["user"] = settings.user
        kwargs["password"] = settings.password.get_secret_value()
    if settings.token is not None:
        kwargs["token"] = settings.token.get_secret_value()
    if settings.nkey_seed_file is not None:
        kwargs["nkeys_seed"] = str(settings.nkey_seed_file)
    if settings.creds_file is not None:
        kwargs["user_credentials"] = str(settings.creds_file)
    if tls is not None:
        kwargs["tls"] = tls
    if settings.tls_server_name is not None:
        kwargs["tls_hostname"] = settings.tls_server_name
    return kwargs | extra


def _readable(path: Path, variable: str) -> Path:
    if not path.is_file():
        raise NatsConfigError(f"{variable}={path}: no such file (is the Secret mounted there?)")
    return path


def tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """A context verifying the server against ``tls_ca_file`` (else the system's CAs) and
    presenting the client certificate, when any TLS file is set; None otherwise, leaving
    nats-py's default (TLS with the system's CAs when the URL or the server asks for it)."""
    if settings.tls_ca_file is None and settings.tls_cert_file is None:
        return None
    cafile = None
    if settings.tls_ca_file is not None:
        cafile = _readable(settings.tls_ca_file, "HERALD_NATS_TLS_CA_FILE")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        context.load_cert_chain(
            _readable(settings.tls_cert_file, "HERALD_NATS_TLS_CERT_FILE"),
            _readable(settings.tls_key_file, "HERALD_NATS_TLS_KEY_FILE"),
        )
    return context


async def connect(
    settings: NatsSettings, *, component: Component, name: str, **extra: Any
) -> Client:
    """Connect as ``component``'s NATS user; ``name`` shows in the server's monitoring."""
    if settings.nkey_seed_file is not None:
        _readable(settings.nkey_seed_file, "HERALD_NATS_NKEY_SEED_FILE")
    if settings.creds_file is not None:
        _readable(settings.creds_file, "HERALD_NATS_CREDS_FILE")
    kwargs = options(settings, component=component, name=name, tls=tls_context(settings), **extra)
    return await nats.connect(**kwargs)
