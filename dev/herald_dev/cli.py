"""``herald``: the development and admin command line."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from herald.dev import processes

__all__ = ["main"]

_Command = TypeVar("_Command", bound=Callable[..., Any])


@click.group()
def cli() -> None:
    """Herald: Telegram broadcasts managed as Kubernetes custom resources."""


@cli.group()
def dev() -> None:
    """A local stack: real kube-apiserver + etcd, NATS JetStream, Postgres, Telegram emulator."""


_state_dir = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the stack keeps its state, logs and env file [default: .herald/dev].",
)
_ports = [
    click.option("--nats-port", type=int, default=0, help="NATS port [default: random free]."),
    click.option(
        "--postgres-port", type=int, default=0, help="Postgres port [default: random free]."
    ),
    click.option(
        "--emulator-port", type=int, default=0, help="Emulator port [default: random free]."
    ),
    click.option(
        "--telegram-url",
        default=None,
        help="Use this Bot API server instead of starting the emulator.",
    ),
]


def _with_ports(function: _Command) -> _Command:
    for option in reversed(_ports):
        function = option(function)
    return function


def _resolve(state_dir: Path | None) -> Path:
    from herald.dev.stack import default_state_dir  # noqa: PLC0415

    return (state_dir or default_state_dir()).resolve()


def _echo_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        # Keys and passwords stay in the (private) env file, out of terminals and CI logs.
        shown = "(in the env file)" if key.endswith(("PASSWORD", "TOKEN_KEYS")) else value
        click.echo(f"  {key}={shown}")


@dev.command()
@_state_dir
@_with_ports
def up(
    state_dir: Path | None,
    nats_port: int,
    postgres_port: int,
    emulator_port: int,
    telegram_url: str | None,
) -> None:
    """Start the stack in the background (idempotent) and write the env file."""
    from herald.dev import stack  # noqa: PLC0415

    directory = _resolve(state_dir)
    options = stack.StackOptions(telegram_url, nats_port, postgres_port, emulator_port)
    state = stack.up(directory, options, say=click.echo)
    _echo_env(state.env)
    env_file = directory / "env"
    click.echo(
        f"\nready. Use it from a shell:\n  . {env_file}\n  kubectl get broadcasts -A\n"
        "  curl $HERALD_API_URL/openapi.json     # herald-api: transactional messages"
    )


@dev.command()
@_state_dir
def down(state_dir: Path | None) -> None:
    """Stop everything the stack started."""
    from herald.dev import stack  # noqa: PLC0415

    stack.down(_resolve(state_dir), say=click.echo)


@dev.command()
@_state_dir
def status(state_dir: Path | None) -> None:
    """Show whether the stack and each service are running."""
    from herald.dev import stack  # noqa: PLC0415

    state, alive = stack.status(_resolve(state_dir))
    if state is None:
        click.echo("the dev stack is not running")
        sys.exit(1)
    for name, running in alive.items():
        click.echo(f"  {name:<18} {'running' if running else 'STOPPED'}")
    _echo_env(state.env)
    if not all(alive.values()):
        sys.exit(1)


@dev.command(hidden=True)
@_state_dir
@_with_ports
def serve(
    state_dir: Path | None,
    nats_port: int,
    postgres_port: int,
    emulator_port: int,
    telegram_url: str | None,
) -> None:
    """The supervisor that `up` starts in the background."""
    from herald.dev import stack  # noqa: PLC0415

    options = stack.StackOptions(telegram_url, nats_port, postgres_port, emulator_port)
    stack.serve(_resolve(state_dir), options)


@dev.command()
@_state_dir
def demo(state_dir: Path | None) -> None:
    """Bring the stack up, deliver the demo broadcast with live progress, show the result."""
    from herald.dev.demo import run_demo  # noqa: PLC0415

    sys.exit(run_demo(_resolve(state_dir), say=click.echo))


@dev.command("build-controlplane")
def build_controlplane() -> None:
    """Build (once per pin) and cache kube-apiserver and etcd; print where they are."""
    from herald.dev import controlplane  # noqa: PLC0415

    binaries = controlplane.ensure_binaries(say=click.echo)
    click.echo(f"kube-apiserver {binaries.pins.kubernetes}: {binaries.kube_apiserver}")
    click.echo(f"etcd {binaries.pins.etcd}: {binaries.etcd}")


@dev.command("build-tools")
def build_tools() -> None:
    """Build (once per pin) and cache helm and kstatus; print where they are."""
    from herald.dev import tools  # noqa: PLC0415

    built = tools.ensure_tools(say=click.echo)
    click.echo(f"helm {built.pins.helm}: {built.helm}")
    click.echo(f"kstatus (cli-utils {built.pins.cli_utils}): {built.kstatus}")


@dev.command("docs")
@click.option("--check", is_flag=True, help="Fail if a committed page differs; write nothing.")
def docs(check: bool) -> None:
    """Regenerate docs/api.md, docs/configuration.md and the tables of docs/nats.md from
    the CRD, the settings and the NATS permissions."""
    from herald.dev import kubectl, reference  # noqa: PLC0415

    stale = []
    for path, text in reference.render_pages(kubectl.repo_root()).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            click.echo(f"wrote {path}")
    if check and stale:
        raise click.ClickException(
            "out of date (run `herald dev docs`): " + ", ".join(map(str, stale))
        )


@cli.group()
def subscribers() -> None:
    """The subscriber table."""


def _bot_of_resource(namespace: str | None, name: str) -> str:
    """The bot id of a Bot resource, read with the kubeconfig (in a pod, its ServiceAccount)."""
    from kubernetes import client  # noqa: PLC0415

    from herald.kube import bots, connecting  # noqa: PLC0415
    from herald.kube.errors import ConfigError, KubeError, NotFound  # noqa: PLC0415

    try:
        loaded = connecting.load()
    except ConfigError as exc:
        raise click.ClickException(
            f"--bot {name} names a Bot resource, and no Kubernetes configuration was found "
            f"({exc}); give the numeric bot id instead"
        ) from exc
    namespace = namespace or loaded.namespace or "default"
    api = client.ApiClient(loaded.configuration)
    try:
        return bots.bot_id_of(api, namespace, name, timeout=30)
    except NotFound as exc:
        raise click.ClickException(
            f'no Bot "{name}" in namespace {namespace} ({exc}); give NAMESPACE/NAME, '
            "or the numeric bot id"
        ) from exc
    except KubeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]


@subscribers.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option(
    "--bot",
    "bot",
    default=None,
    metavar="BOT",
    help=(
        "Whose subscribers these are: a Bot's NAME in the current namespace, NAMESPACE/NAME, "
        "or a numeric bot id (which needs no Kubernetes). Default: the only bot the "
        "database knows."
    ),
)
def import_(csv_file: io.TextIOWrapper, bot: str | None) -> None:
    """Import subscribers of one bot from CSV_FILE (all rows or none).

    Columns: chat_id (required), username, first_name, last_name, language_code, tags
    (separated by ';' or spaces). Connects to HERALD_DATABASE_URL.
    """
    import asyncpg  # noqa: PLC0415

    from herald.core import importing  # noqa: PLC0415
    from herald.core.settings import DatabaseSettings  # noqa: PLC0415
    from herald.core.subscribers import CsvError, parse_csv  # noqa: PLC0415

    try:
        rows = parse_csv(csv_file)
    except CsvError as exc:
        raise click.ClickException(f"{csv_file.name}: {exc}") from exc
    try:
        named = importing.parse_bot(bot) if bot is not None else None
    except importing.BotChoiceError as exc:
        raise click.ClickException(str(exc)) from exc
    if isinstance(named, importing.BotName):
        named = _bot_of_resource(named.namespace, named.name)

    async def load() -> tuple[str, int]:
        dsn = DatabaseSettings().url.get_secret_value()
        connection = await asyncpg.connect(dsn)
        try:
            bot_id = named or importing.only_bot(await importing.known_bot_ids(connection))
            return bot_id, await importing.import_subscribers(connection, rows, bot_id=bot_id)
        finally:
            await connection.close()

    try:
        bot_id, count = asyncio.run(load())
    except importing.BotChoiceError as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"cannot import into the database: {exc}") from exc
    click.echo(f"imported {count} subscribers of bot {bot_id} from {csv_file.name}")


@subscribers.command()
@click.argument("chat_id", type=int, metavar="CHAT_ID")
@click.option(
    "--bot",
    "bot",
    required=True,
    metavar="BOT",
    help=(
        "Whose chat it is: a Bot's NAME in the current namespace, NAMESPACE/NAME, or a "
        "numeric bot id (which needs no Kubernetes). Other bots' rows of the same chat id "
        "are kept."
    ),
)
def forget(chat_id: int, bot: str) -> None:
    """Erase CHAT_ID of one bot everywhere: its subscriber row, its ledger rows and clicks in
    every Broadcast of the bot, its transactional messages; in one transaction, for a
    data-protection request (docs/runbook.md). A group's negative id goes after `--`.
    Connects to HERALD_DATABASE_URL.
    """
    import asyncpg  # noqa: PLC0415

    from herald.core import forgetting, importing  # noqa: PLC0415
    from herald.core.settings import DatabaseSettings  # noqa: PLC0415

    try:
        named = importing.parse_bot(bot)
    except importing.BotChoiceError as exc:
        raise click.ClickException(str(exc)) from exc
    bot_id = (
        _bot_of_resource(named.namespace, named.name)
        if isinstance(named, importing.BotName)
        else named
    )

    async def erase() -> forgetting.Forgotten:
        connection = await asyncpg.connect(DatabaseSettings().url.get_secret_value())
        try:
            return await forgetting.forget_chat(connection, bot_id=bot_id, chat_id=chat_id)
        finally:
            await connection.close()

    try:
        gone = asyncio.run(erase())
    except forgetting.UnknownBot as exc:
        raise click.ClickException(f"{exc}; nothing was removed") from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(
            f"cannot erase from the database, nothing was removed: {exc}"
        ) from exc
    click.echo(f"forgot chat {chat_id} of bot {bot_id}:")
    click.echo(f"  subscribers: {gone.subscribers}")
    click.echo(f"  ledger rows: {gone.deliveries} (of {gone.broadcasts} broadcasts)")
    click.echo(f"  clicks: {gone.clicks}")
    click.echo(f"  transactional messages: {gone.messages}")
    if not gone.total:
        click.echo(f"nothing was recorded for chat {chat_id} of bot {bot_id}", err=True)


@cli.group()
def db() -> None:
    """The database schema."""


@db.command()
@click.option("--check", is_flag=True, help="Only list what is pending; exit 1 if anything is.")
@click.option(
    "--bot-id",
    default=None,
    metavar="ID",
    help=(
        "The bot that subscribers recorded before they were kept per bot belong to (read by "
        "migration 0004 only, when it cannot tell): the digits before the colon of its "
        "token. Default: HERALD_DATABASE_LEGACY_BOT_ID."
    ),
)
def migrate(check: bool, bot_id: str | None) -> None:
    """Bring the schema at HERALD_DATABASE_URL up to date (the operator does it at start unless
    HERALD_DATABASE_MIGRATE=false)."""
    import asyncpg  # noqa: PLC0415

    from herald.core import migrating  # noqa: PLC0415
    from herald.core.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings()
    legacy_bot_id = bot_id if bot_id is not None else settings.legacy_bot_id

    async def run() -> list[migrating.Migration]:
        connection = await asyncpg.connect(settings.url.get_secret_value())
        try:
            if check:
                return await migrating.pending_migrations(connection)
            return await migrating.apply_migrations(connection, legacy_bot_id=legacy_bot_id)
        finally:
            await connection.close()

    try:
        done = asyncio.run(run())
    except (OSError, asyncpg.PostgresError, migrating.MigrationError) as exc:
        raise click.ClickException(f"cannot migrate the database: {exc}") from exc
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in done) or "nothing"
    click.echo(f"{'pending' if check else 'applied'}: {names}")
    if bot_id is not None and not check and all(m.name != "subscribers_per_bot" for m in done):
        # Said, not refused: the schema is as asked, and a script that always passes the id
        # stays correct.
        click.echo("--bot-id was not needed: subscribers were kept per bot already", err=True)
    if check and done:
        sys.exit(1)


@cli.command("token-key")
@click.option("--id", "key_id", default="k1", show_default=True, help="The key's id in the ring.")
def token_key(key_id: str) -> None:
    """Print a new token key, `<id>:<base64 of 32 random bytes>`, for HERALD_TOKEN_KEYS or the
    chart's token key Secret (rotation: docs/install.md)."""
    from herald.core import sealing  # noqa: PLC0415

    key = sealing.generate_key(key_id)
    try:
        sealing.KeyRing.parse(key)  # refuses an id the ring would not read
    except sealing.SealError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(key)


def main() -> None:
    try:
        cli()
    except processes.HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
