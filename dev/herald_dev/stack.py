"""The local dev stack behind ``herald dev up|status|down``.

``up`` starts a detached supervisor (``herald dev serve``) that owns every service as a child
process and tears them all down on SIGTERM, so ``down`` has one process to stop and a crashed
shell leaves nothing behind. The supervisor reports readiness through ``state.json`` and the
shell exports through ``env`` in the state directory.

NATS runs with authorization on, a user per component (:mod:`herald.dev.nats`): every
component the stack runs connects as its own user. ``env`` gives a shell the admin user, for
tools; ``env.<component>`` (operator, sender, bot, api), sourced after it, switches
HERALD_NATS_USER and HERALD_NATS_PASSWORD to that component's user, to run it by hand as it
runs in a cluster.

The stack runs the operator, the senders (as the sender Deployment's replicas), herald-api (at
HERALD_API_URL of ``env``) and the bot process, and has one Bot to serve: ``demo-bot`` of the
``demo`` namespace (examples/bot.yaml, with the token of examples/bot-secret.yaml, which the
emulator takes as its own bot), and one application allowed to send with it through
herald-api: the ServiceAccount ``demo-app`` of examples/transactional-app.yaml.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg

from herald.core.migrating import apply_migrations
from herald.core.permissions import Component
from herald.dev import controlplane, keys, processes
from herald.dev.kubectl import Kubectl, repo_root
from herald.dev.nats import ADMIN, NatsServer
from herald.dev.postgres import PostgresCluster
from herald.dev.samples import CHANNEL_POST
from herald.dev.supervising import SENDER_DEPLOYMENT, SenderSupervisor, sender_deployment

__all__ = ["StackOptions", "StackState", "default_state_dir", "down", "serve", "status", "up"]

DATABASE = "herald"
_ENV_HEADING = "# herald dev environment: source this file (. .herald/dev/env)"
SYSTEM_NAMESPACE = "herald-system"
# Where the dev Bot lives, and where `herald dev demo` sends from.
DEV_NAMESPACE = "demo"
DEV_BOT = ("bot-secret.yaml", "bot.yaml")  # of examples/
# The ServiceAccount allowed to send with the dev Bot through herald-api, and its Role.
DEV_APP = "transactional-app.yaml"  # of examples/
# herald-api's console script.
API_SCRIPT = "herald-api"
# How long the operator's start-up (streams, migrations) and herald-api's may take on a
# loaded machine.
READY_SECONDS = 90


def default_state_dir() -> Path:
    return repo_root() / ".herald" / "dev"


@dataclass(frozen=True)
class StackOptions:
    telegram_url: str | None = None
    nats_port: int = 0
    postgres_port: int = 0
    emulator_port: int = 0


@dataclass
class StackState:
    """What ``state.json`` holds: the supervisor, its services and where they listen."""

    supervisor_pid: int
    ready: bool = False
    error: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)  # name -> pid

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(asdict(self), indent=2))
        scratch.replace(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_port(port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise processes.HarnessError(
                f"port {port} is already in use ({exc.strerror}); pick another with {flag}"
            ) from exc


def env_text(env: Mapping[str, str], *, heading: str = _ENV_HEADING) -> str:
    lines = [heading]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _env_files(state_dir: Path) -> list[Path]:
    return [state_dir / "env", *(state_dir / f"env.{c.value}" for c in Component)]


def _write_env_files(state_dir: Path, env: Mapping[str, str], nats: NatsServer) -> None:
    """``env`` (the admin's NATS user) and one ``env.<component>`` per component; private,
    since they hold passwords."""
    files = {state_dir / "env": env_text(env)}
    for component in Component:
        own = nats.credentials(component)
        heading = (
            f"# the {component.value}'s NATS user: source after env "
            f"(. .herald/dev/env && . .herald/dev/env.{component.value})"
        )
        files[state_dir / f"env.{component.value}"] = env_text(
            {key: own[key] for key in ("HERALD_NATS_USER", "HERALD_NATS_PASSWORD")},
            heading=heading,
        )
    for path, text in files.items():
        path.touch(mode=0o600)
        path.write_text(text)


def up(state_dir: Path, options: StackOptions, *, say: Callable[[str], None]) -> StackState:
    """Start the supervisor in the background unless one runs; wait until it is ready."""
    state_file = state_dir / "state.json"
    current = StackState.load(state_file)
    if current is not None and _pid_alive(current.supervisor_pid) and current.ready:
        say("the dev stack is already running")
        return current
    if current is not None:
        down(state_dir, say=lambda _: None)
    _check_port(options.nats_port, "--nats-port")
    _check_port(options.postgres_port, "--postgres-port")
    _check_port(options.emulator_port, "--emulator-port")
    # The build can take minutes on a cold cache; do it here, in the foreground, with output.
    controlplane.ensure_binaries(say=say)
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "herald.dev.cli", "dev", "serve", f"--state-dir={state_dir}"]
    if options.telegram_url:
        argv.append(f"--telegram-url={options.telegram_url}")
    argv += [
        f"--nats-port={options.nats_port}",
        f"--postgres-port={options.postgres_port}",
        f"--emulator-port={options.emulator_port}",
    ]
    with (state_dir / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = StackState.load(state_file)
        if state is not None and state.supervisor_pid == supervisor.pid:
            if state.error:
                raise processes.HarnessError(f"the dev stack failed to start: {state.error}")
            if state.ready:
                return state
        if supervisor.poll() is not None:
            log_tail = (state_dir / "supervisor.log").read_text(errors="replace")[-3000:]
            raise processes.HarnessError(f"the dev stack supervisor exited:\n{log_tail}")
        time.sleep(0.2)
    processes.stop_group(supervisor.pid)
    raise processes.HarnessError("the dev stack did not become ready within 180s")


def down(state_dir: Path, *, say: Callable[[str], None]) -> bool:
    """Stop the supervisor (which stops its services); returns whether anything was running."""
    state_file = state_dir / "state.json"
    state = StackState.load(state_file)
    if state is None:
        say("the dev stack is not running")
        return False
    processes.stop_group(state.supervisor_pid, timeout=30)
    # Belt and braces: services are process-group leaders; a killed supervisor leaves them.
    for pid in state.services.values():
        processes.stop_group(pid, timeout=10)
    state_file.unlink(missing_ok=True)
    for path in _env_files(state_dir):
        path.unlink(missing_ok=True)
    say("the dev stack is stopped")
    return True


def status(state_dir: Path) -> tuple[StackState | None, dict[str, bool]]:
    state = StackState.load(state_dir / "state.json")
    if state is None:
        return None, {}
    alive = {"supervisor": _pid_alive(state.supervisor_pid)}
    alive.update({name: _pid_alive(pid) for name, pid in state.services.items()})
    return state, alive


async def _create_database(postgres: PostgresCluster) -> None:
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(postgres.dsn(DATABASE))
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()


def api_url(port: int) -> str:
    """Where herald-api of the stack listens: loopback only, as every service of the stack."""
    return f"http://127.0.0.1:{port}"


def _start_components(
    stack: contextlib.ExitStack,
    state: StackState,
    nats: NatsServer,
    kubeconfig: Path,
    logs: Path,
    *,
    api_port: int,
) -> None:
    """The operator, the supervisor that plays kubelet for the sender Deployment, herald-api
    and the bot process, with the dev Bot to serve and its application."""
    kubectl = Kubectl(kubeconfig)
    kubectl("create", "namespace", SYSTEM_NAMESPACE, check=False)
    kubectl("create", "namespace", DEV_NAMESPACE, check=False)
    examples = repo_root() / "examples"
    dev_bot = [arg for name in (*DEV_BOT, DEV_APP) for arg in ("-f", str(examples / name))]
    kubectl.in_namespace(DEV_NAMESPACE)("apply", *dev_bot)
    # Forced: the operator took .spec.replicas over through the scale subresource on an
    # earlier run (the control plane's data outlives `down`), and a fresh stack starts from
    # no senders anyway; the operator scales up again within seconds if anything sends.
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=json.dumps(sender_deployment(SENDER_DEPLOYMENT, SYSTEM_NAMESPACE)),
    )
    env = {
        **os.environ,
        **state.env,
        "HERALD_SENDER_NAMESPACE": SYSTEM_NAMESPACE,
        "HERALD_SENDER_DEPLOYMENT": SENDER_DEPLOYMENT,
        "HERALD_OPERATOR_LIVENESS_PORT": str(processes.free_port()),
        "HERALD_OPERATOR_METRICS_PORT": str(processes.free_port()),
        "HERALD_SENDER_METRICS_PORT": "0",
        "HERALD_SENDER_HEALTH_PORT": "0",
    }
    operator = processes.ManagedProcess(
        name="herald-operator",
        argv=[sys.executable, "-m", "herald.operator"],
        log_path=logs / "operator.log",
        env=env | nats.credentials(Component.OPERATOR),
    ).start()
    stack.callback(operator.stop, timeout=30)
    state.services["herald-operator"] = operator.pid
    # The bot and herald-api stop when the streams and the control bucket are missing, and
    # only the operator creates them, in its start-up; kopf answers /healthz after that.
    liveness = f"http://127.0.0.1:{env['HERALD_OPERATOR_LIVENESS_PORT']}/healthz"
    processes.wait_until(
        lambda: processes.http_ok(liveness),
        timeout=READY_SECONDS,
        what="the operator's start-up",
        process=operator,
        interval=0.2,
    )
    supervisor = SenderSupervisor(
        kubeconfig=kubeconfig,
        namespace=SYSTEM_NAMESPACE,
        deployment=SENDER_DEPLOYMENT,
        env=env | nats.credentials(Component.SENDER),
        logs=logs,
    ).start()
    stack.callback(supervisor.stop)
    bot = processes.ManagedProcess(
        name="herald-bot",
        argv=[sys.executable, "-m", "herald.bot"],
        log_path=logs / "bot.log",
        env={
            **env,
            **nats.credentials(Component.BOT),
            "HERALD_BOT_HEALTH_PORT": str(processes.free_port()),
            "HERALD_BOT_METRICS_PORT": "0",
            # No Bot of the stack takes webhooks; the port must not be another's 8080.
            "HERALD_BOT_WEBHOOK_PORT": str(processes.free_port()),
        },
    ).start()
    stack.callback(bot.stop, timeout=30)
    state.services["herald-bot"] = bot.pid
    # The admin's kubeconfig stands in for the pod's ServiceAccount: it may ask TokenReview
    # and SubjectAccessReview, as the chart's ClusterRole lets herald-api.
    api = processes.ManagedProcess(
        name="herald-api",
        argv=[str(processes.find_script(API_SCRIPT))],
        log_path=logs / "api.log",
        env={
            **env,
            **nats.credentials(Component.API),
            "HERALD_API_HOST": "127.0.0.1",
            "HERALD_API_PORT": str(api_port),
        },
    ).start()
    stack.callback(api.stop, timeout=30)
    state.services["herald-api"] = api.pid
    processes.wait_until(
        lambda: processes.http_ok(f"{api_url(api_port)}/readyz"),
        timeout=READY_SECONDS,
        what="herald-api /readyz",
        process=api,
        interval=0.2,
    )


def serve(state_dir: Path, options: StackOptions) -> None:
    """Run the stack in the foreground until SIGTERM/SIGINT; the body of the supervisor."""
    state_file = state_dir / "state.json"
    state = StackState(supervisor_pid=os.getpid())
    state.save(state_file)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logs = state_dir / "logs"
    try:
        with contextlib.ExitStack() as stack:
            plane = stack.enter_context(controlplane.running(state_dir / "controlplane"))
            state.services.update({"etcd": plane.etcd.pid, "kube-apiserver": plane.apiserver.pid})  # type: ignore[union-attr]
            Kubectl(plane.kubeconfig).install_crds()
            nats = stack.enter_context(NatsServer(logs, port=options.nats_port or None))
            state.services["nats-server"] = nats.process.pid  # type: ignore[union-attr]
            postgres = stack.enter_context(
                PostgresCluster(logs, port=options.postgres_port or None)
            )
            state.services["postgres"] = postgres.process.pid  # type: ignore[union-attr]
            asyncio.run(_create_database(postgres))
            telegram_url = options.telegram_url
            if telegram_url is None:
                telegram_url, emulator = stack.enter_context(
                    processes.emulator(
                        logs / "emulator.log",
                        port=options.emulator_port,
                        flags=[f"--post={CHANNEL_POST[0]}:{CHANNEL_POST[1]}"],
                    )
                )
                state.services["telegram-emulator"] = emulator.pid
            api_port = processes.free_port()
            state.env = {
                "KUBECONFIG": str(plane.kubeconfig),
                **nats.credentials(ADMIN),
                "HERALD_DATABASE_URL": postgres.dsn(DATABASE),
                "HERALD_TELEGRAM_API_URL": telegram_url,
                # Kept in the state folder: the stack that comes back opens its old records.
                "HERALD_TOKEN_KEYS": keys.token_keys(state_dir),
                # For applications and curl: herald-api reads HERALD_API_HOST/PORT instead.
                "HERALD_API_URL": api_url(api_port),
            }
            _write_env_files(state_dir, state.env, nats)
            _start_components(stack, state, nats, plane.kubeconfig, logs, api_port=api_port)
            state.ready = True
            state.save(state_file)
            stop.wait()
    except Exception as exc:  # reported to `herald dev up` through the state file
        state.error = str(exc)
        state.save(state_file)
        raise
    finally:
        if state.error is None:
            state_file.unlink(missing_ok=True)
