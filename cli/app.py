"""The commands of ``kubectl broadcast``; each gathers, calls a view, prints.

kubectl hands a plugin every argument after its name and refuses flags before it, so each
command takes kubectl's own connection flags (``--kubeconfig``, ``--context``,
``-n/--namespace``) wherever they are written.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from herald.cli import kubeapi, ledgers, views
from herald.cli.kubeapi import Cluster, PluginError
from herald.core.broadcasts import Broadcast
from herald.core.deliveries import DeliveryState
from herald.core.settings import TelegramSettings

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _connection_options(command: _F) -> _F:
    options = (
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False),
            help="Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
        ),
        click.option("--context", help="The kubeconfig context to use."),
        click.option(
            "-n", "--namespace", help="The namespace (default: the context's, else default)."
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _cluster(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    return kubeapi.connect(kubeconfig=kubeconfig, context=context, namespace=namespace)


def _errors_to_exit(command: _F) -> _F:
    """A :class:`PluginError` ends the command with its message on stderr and status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _now() -> datetime:
    return datetime.now(UTC)


def _broadcast(cluster: Cluster, name: str) -> Broadcast:
    return kubeapi.parse(cluster.get(cluster.namespace, name))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """List, inspect, pause, resume, test-send Herald Broadcasts (herald.dev) and read
    their ledgers."""


@main.command("list")
@_connection_options
@click.option("-A", "--all-namespaces", is_flag=True, help="List Broadcasts of every namespace.")
@_errors_to_exit
def list_(
    kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool
) -> None:
    """List Broadcasts with phase and progress."""
    cluster = _cluster(kubeconfig, context, namespace)
    items = cluster.list(None if all_namespaces else cluster.namespace)
    broadcasts = []
    for item in items:
        try:
            broadcasts.append(kubeapi.parse(item))
        except PluginError as exc:
            click.echo(f"warning: {exc}", err=True)
    table = views.list_table(broadcasts, all_namespaces=all_namespaces, now=_now())
    if table:
        click.echo(table)
    elif all_namespaces:
        click.echo("No broadcasts found.", err=True)
    else:
        click.echo(f"No broadcasts found in {cluster.namespace} namespace.", err=True)


@main.command()
@click.argument("name")
@_connection_options
@_errors_to_exit
def status(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Show a Broadcast's progress bar, counts and conditions."""
    cluster = _cluster(kubeconfig, context, namespace)
    click.echo(views.status_text(_broadcast(cluster, name), now=_now()))


def _set_paused(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None, *, paused: bool
) -> None:
    cluster = _cluster(kubeconfig, context, namespace)
    body = cluster.set_paused(cluster.namespace, name, paused=paused)
    click.echo(views.paused_text(kubeapi.parse(body)))


@main.command()
@click.argument("name")
@_connection_options
@_errors_to_exit
def pause(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Set spec.paused: no new message leaves within about a second."""
    _set_paused(name, kubeconfig, context, namespace, paused=True)


@main.command()
@click.argument("name")
@_connection_options
@_errors_to_exit
def resume(name: str, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Clear spec.paused: sending goes on where it stopped."""
    _set_paused(name, kubeconfig, context, namespace, paused=False)


@main.command("test-send")
@click.argument("name")
@click.option(
    "--chat-id",
    "chat_ids",
    type=int,
    multiple=True,
    required=True,
    help="A chat to send the test message to; repeat for more.",
)
@click.option(
    "--language",
    help="Render the spec.content.localized variant of this language (default: the default).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each Bot API answer.",
)
@_connection_options
@_errors_to_exit
def test_send(
    *,
    name: str,
    chat_ids: tuple[int, ...],
    language: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Send a Broadcast's message to the given chats only.

    The message is rendered as the senders render it and sent with the bot token from the
    Secret that spec.botRef names, to the Bot API at HERALD_TELEGRAM_API_URL. The audience,
    the delivery ledger and the status are not touched. Name placeholders ({first_name}...)
    render empty: the plugin does not know the chats' names.
    """
    # Imported here: aiogram takes a second or more to import, and only a test send needs it.
    from herald.telegram import imports  # noqa: PLC0415

    imports.defer_model_builds()
    from herald.cli import sending  # noqa: PLC0415

    cluster = _cluster(kubeconfig, context, namespace)
    broadcast = _broadcast(cluster, name)
    token = cluster.bot_token(broadcast)
    results = asyncio.run(
        sending.send_test_message(
            broadcast,
            token=token,
            chat_ids=chat_ids,
            language=language,
            api_url=TelegramSettings().api_url,
            request_timeout=timeout,
        )
    )
    click.echo(views.sent_text(name, results))
    if not all(r.ok for r in results):
        raise SystemExit(1)


@main.command()
@click.argument("name")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([state.value for state in DeliveryState]),
    help="Only recipients in this state; repeat for more (--state failed --state uncertain).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table; csv (with a header line); json (JSON lines, one recipient a line).",
)
@click.option(
    "--api-url",
    envvar="HERALD_API_URL",
    help="herald-api's URL (env HERALD_API_URL); default: its Service in --api-namespace.",
)
@click.option(
    "--api-namespace",
    envvar="HERALD_API_NAMESPACE",
    default="herald",
    show_default=True,
    help="The namespace Herald is installed in, where herald-api's Service is found.",
)
@click.option(
    "--token",
    envvar="HERALD_API_TOKEN",
    help="Bearer token for herald-api (env HERALD_API_TOKEN); default: the kubeconfig "
    "user's token.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for herald-api to answer, and between two parts of the answer.",
)
@_connection_options
@_errors_to_exit
def ledger(
    *,
    name: str,
    states: tuple[str, ...],
    output: str,
    api_url: str | None,
    api_namespace: str,
    token: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Print a Broadcast's ledger: every recipient's state, reason and Telegram message id.

    Streamed from herald-api as it reads it, in chat id order, so a ledger of millions
    prints in little memory. Access is a Role granting get on broadcasts/deliveries
    (apiGroup herald.dev) for the Broadcast.
    """
    cluster = _cluster(kubeconfig, context, namespace)
    url = api_url or cluster.api_url(api_namespace)
    if url is None:
        raise PluginError(
            f'no herald-api Service in namespace "{api_namespace}": give --api-namespace, '
            "or --api-url (HERALD_API_URL)"
        )
    bearer = token or cluster.bearer
    if bearer is None:
        raise PluginError(
            "the kubeconfig user has no bearer token (client certificates?), and herald-api "
            "authenticates tokens: give --token (HERALD_API_TOKEN), e.g. from "
            "kubectl create token NAME"
        )
    chunks = ledgers.stream(
        url,
        token=bearer,
        namespace=cluster.namespace,
        name=name,
        states=states,
        as_csv=output == "csv",
        timeout=timeout,
    )
    if output == "table":
        click.echo(views.ledger_line(views.LEDGER_HEADER))
        for row in ledgers.rows(chunks):
            click.echo(views.ledger_line(views.ledger_cells(row)))
        return
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
    out.flush()
