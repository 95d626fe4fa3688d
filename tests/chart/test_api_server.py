"""The chart on the real API server: a server-side dry run of everything it renders, its RBAC
applied for real and asked with `kubectl auth can-i` as each ServiceAccount, `helm install`
and `helm upgrade` around the operator's replicas, and the operator and herald-api running on
nothing but their own ServiceAccount's token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.core.permissions import Component
from herald.dev import keys, processes, tools
from herald.dev.controlplane import ControlPlane
from herald.dev.kubectl import Kubectl, repo_root
from herald.dev.nats import NatsAccess
from herald.dev.processes import ManagedProcess, wait_until

pytestmark = pytest.mark.controlplane

CHART = repo_root() / "charts" / "herald"
MONITORING_CRDS = Path(__file__).parent / "data" / "monitoring.coreos.com.yaml"
RenderText = Callable[..., str]


@pytest.fixture(scope="module")
def monitoring_crds(controlplane: ControlPlane) -> None:
    """ServiceMonitor and PrometheusRule (a hand-written subset: see the file's header)."""
    Kubectl(controlplane.kubeconfig).install_crds(MONITORING_CRDS)


@pytest.fixture
def other_namespace(controlplane: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    admin = Kubectl(controlplane.kubeconfig)
    admin("create", "namespace", name)
    yield name
    admin("delete", "namespace", name, "--wait=false", check=False)


def without_crds(manifest: str) -> str:
    """The session's CRDs are shared by every test: a real apply leaves them alone."""
    documents = [d for d in yaml.safe_load_all(manifest) if d]
    return yaml.safe_dump_all(d for d in documents if d["kind"] != "CustomResourceDefinition")


def can_i(kubectl: Kubectl, account: str, *args: str, namespace: str | None = None) -> bool:
    where = namespace or str(kubectl.namespace)
    answer = kubectl(
        "auth",
        "can-i",
        *args,
        f"--namespace={where}",
        f"--as=system:serviceaccount:{kubectl.namespace}:{account}",
        check=False,
    )
    assert answer.stdout.strip() in {"yes", "no"}, answer.stderr
    return answer.stdout.strip() == "yes"


def test_everything_the_chart_renders_passes_a_server_side_dry_run(
    kubectl: Kubectl, render_text: RenderText, monitoring_crds: None
) -> None:
    manifest = render_text(
        "--set=bot.enabled=true",
        "--set=bot.webhook.url=https://bot.example.com/telegram/webhook",
        "--set=bot.webhook.secretKey=webhookSecret",
        "--set=operator.podDisruptionBudget.enabled=true",
        "--set=bot.podDisruptionBudget.enabled=true",
        "--set=metrics.serviceMonitor.enabled=true",
        "--set=metrics.prometheusRule.enabled=true",
        "--set=grafanaDashboard.enabled=true",
        "--set=networkPolicy.enabled=true",
        "--set=networkPolicy.egress[0].ports[0].port=4222",
        "--set=nats.existingSecret=herald-nats",
        # NATS identities of each kind and TLS files: their env and volumes pass too.
        "--set=nats.tls.caSecret=nats-ca",
        "--set=nats.auth.operator.existingSecret=herald-nats-operator",
        "--set=nats.auth.operator.tokenKey=token",
        "--set=nats.auth.sender.user=herald-sender",
        "--set=nats.auth.sender.existingSecret=herald-nats-sender",
        "--set=nats.auth.sender.passwordKey=password",
        "--set=nats.auth.sender.tlsSecret=herald-sender-tls",
        "--set=nats.auth.bot.existingSecret=herald-nats-bot",
        "--set=nats.auth.bot.nkeySeedKey=seed",
        "--set=nats.auth.api.existingSecret=herald-nats-api",
        "--set=nats.auth.api.credsKey=user.creds",
        "--set=nats.auth.api.tlsSecret=herald-api-tls",
        "--set=networkPolicy.apiFrom[0].podSelector.matchLabels.app=shop",
        namespace=str(kubectl.namespace),
        release=f"r{uuid.uuid4().hex[:6]}",
    )
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=helm",
        "-f",
        "-",
        input=manifest,
    )
    applied = result.stdout.splitlines()
    kinds = {line.split("/")[0].split(".")[0] for line in applied}
    assert kinds >= {
        "customresourcedefinition",
        "deployment",
        "serviceaccount",
        "clusterrole",
        "clusterrolebinding",
        "role",
        "rolebinding",
        "service",
        "servicemonitor",
        "prometheusrule",
        "configmap",
        "poddisruptionbudget",
        "networkpolicy",
    }, applied
    assert all(line.endswith("serverside-applied (server dry run)") for line in applied)


def test_each_service_account_may_do_what_it_needs_and_nothing_else(
    kubectl: Kubectl, render_text: RenderText, other_namespace: str
) -> None:
    """Operator watching one other namespace; the bot in the release's namespace."""
    home, watched, elsewhere = str(kubectl.namespace), other_namespace, "kube-system"
    manifest = render_text(
        f"--set=operator.watchNamespaces={{{watched}}}",
        "--set=bot.enabled=true",
        namespace=home,
    )
    # Every object names its namespace; the Operator's Role lives in the watched one.
    Kubectl(kubectl.kubeconfig)("apply", "--server-side", "-f", "-", input=without_crds(manifest))

    def operator(*args: str, namespace: str) -> bool:
        return can_i(kubectl, "herald-operator", *args, namespace=namespace)

    for verb in ("get", "list", "watch", "patch"):
        assert operator(verb, "broadcasts.herald.dev", namespace=watched)
    assert operator("patch", "broadcasts.herald.dev", "--subresource=status", namespace=watched)
    assert operator("create", "events", namespace=watched)
    assert operator("get", "secrets/shop-bot", namespace=watched)
    assert operator("get", "deployments.apps/herald-sender", "--subresource=scale", namespace=home)
    assert operator(
        "patch", "deployments.apps/herald-sender", "--subresource=scale", namespace=home
    )

    assert not operator("list", "secrets", namespace=watched)
    assert not operator("get", "secrets/shop-bot", namespace=elsewhere)
    assert not operator("get", "secrets/herald-database", namespace=home)
    assert not operator("list", "broadcasts.herald.dev", namespace=elsewhere)
    assert not operator("delete", "broadcasts.herald.dev", namespace=watched)
    assert not operator("patch", "deployments.apps/herald-sender", namespace=home)
    assert not operator(
        "patch", "deployments.apps/herald-operator", "--subresource=scale", namespace=home
    )
    assert not operator("create", "pods/exec", namespace=watched)
    assert not operator("list", "customresourcedefinitions.apiextensions.k8s.io", namespace=home)
    assert not operator("list", "namespaces", namespace=home)

    def bot(*args: str, namespace: str = home) -> bool:
        return can_i(kubectl, "herald-bot", *args, namespace=namespace)

    for verb in ("get", "list", "watch", "patch", "create", "delete"):
        assert bot(verb, "broadcasts.herald.dev")
    assert not bot("patch", "broadcasts.herald.dev", "--subresource=status")
    assert not bot("list", "broadcasts.herald.dev", namespace=watched)
    assert not bot("get", "secrets/herald-bot")
    assert not bot("create", "pods/exec")
    assert not bot("get", "customresourcedefinitions.apiextensions.k8s.io")

    def sender(*args: str, namespace: str = home) -> bool:
        return can_i(kubectl, "herald-sender", *args, namespace=namespace)

    assert not sender("get", "broadcasts.herald.dev")
    assert not sender("get", "secrets/herald-database")
    assert not sender("get", "configmaps")
    assert not sender("get", "deployments.apps/herald-sender", "--subresource=scale")

    def api(*args: str, namespace: str = home) -> bool:
        return can_i(kubectl, "herald-api", *args, namespace=namespace)

    assert api("create", "tokenreviews.authentication.k8s.io")
    assert api("create", "subjectaccessreviews.authorization.k8s.io")
    # It asks whether others may; it may not itself, nor read what it serves from NATS.
    assert not api("create", "messages.herald.dev")
    # A Broadcast, to find its ledger; never to list, watch or change one.
    assert api("get", "broadcasts.herald.dev", namespace=watched)
    assert not api("list", "broadcasts.herald.dev", namespace=watched)
    assert not api("patch", "broadcasts.herald.dev", namespace=watched)
    assert not api("get", "bots.herald.dev", namespace=watched)
    assert not api("get", "secrets/herald-database")
    assert not api("create", "serviceaccounts/token", namespace=watched)
    assert not api("create", "localsubjectaccessreviews.authorization.k8s.io")
    assert not api("create", "pods/exec")


def test_the_cluster_wide_operator_reads_broadcasts_everywhere_but_no_more(
    kubectl: Kubectl, render_text: RenderText
) -> None:
    release = f"r{uuid.uuid4().hex[:6]}"
    manifest = without_crds(render_text(namespace=str(kubectl.namespace), release=release))
    kubectl("apply", "--server-side", "-f", "-", input=manifest)
    try:
        account = f"{release}-herald-operator"
        for namespace in (str(kubectl.namespace), "kube-system"):
            assert can_i(kubectl, account, "watch", "broadcasts.herald.dev", namespace=namespace)
            assert can_i(kubectl, account, "get", "secrets/shop-bot", namespace=namespace)
            assert not can_i(kubectl, account, "list", "secrets", namespace=namespace)
            assert not can_i(kubectl, account, "create", "pods/exec", namespace=namespace)
        assert not can_i(kubectl, account, "get", "customresourcedefinitions.apiextensions.k8s.io")
    finally:
        kubectl("delete", "-f", "-", "--wait=false", input=manifest, check=False)


def sender_replicas(kubectl: Kubectl) -> int:
    scale = kubectl("get", "deployment/herald-sender", "--subresource=scale", "-o", "json")
    # The Scale object leaves out a replica count of zero.
    value: int = json.loads(scale.stdout)["spec"].get("replicas", 0)
    return value


def helm_env(controlplane: ControlPlane, home: Path) -> dict[str, str]:
    return {
        "KUBECONFIG": str(controlplane.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def test_helm_install_and_upgrade_leave_the_operators_replicas_alone(
    kubectl: Kubectl, controlplane: ControlPlane, tmp_path: Path
) -> None:
    namespace = str(kubectl.namespace)
    env = helm_env(controlplane, tmp_path)
    # The session's CRD is not the release's to own; a namespaced operator needs no
    # ClusterRole that other tests could see. herald-api's ClusterRole is cluster-wide by
    # nature, and other tests applied one of the same release name: it is left out here.
    flags = (
        "--set=crds.enabled=false",
        f"--set=operator.watchNamespaces={{{namespace}}}",
        "--set=api.enabled=false",
    )
    installed = tools.helm(
        "install", "herald", str(CHART), f"--namespace={namespace}", *flags, env=env, check=True
    )
    assert "rollout status deployment/herald-operator" in installed.stdout  # NOTES.txt

    def replicas() -> int:
        return sender_replicas(kubectl)

    assert replicas() == 1  # Kubernetes' default until the operator's first pass
    # What the operator does (a patch of the scale subresource), with its own identity.
    kubectl(
        "patch",
        "deployment/herald-sender",
        "--subresource=scale",
        "--type=merge",
        '--patch={"spec": {"replicas": 3}}',
        "--field-manager=herald-operator",
        f"--as=system:serviceaccount:{namespace}:herald-operator",
    )
    tools.helm(
        "upgrade",
        "herald",
        str(CHART),
        f"--namespace={namespace}",
        *flags,
        "--set=logs.level=DEBUG",
        "--set=sender.shutdownSeconds=40",
        env=env,
        check=True,
    )
    assert replicas() == 3
    sender = json.loads(kubectl("get", "deployment/herald-sender", "-o", "json").stdout)
    assert sender["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45


def token_kubeconfig(controlplane: ControlPlane, kubectl: Kubectl, account: str) -> dict[str, Any]:
    """A kubeconfig that authenticates with nothing but the ServiceAccount's token, as a pod's
    mounted token would."""
    token = kubectl("create", "token", account, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(controlplane.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {
                "name": account,
                "context": {
                    "cluster": cluster["name"],
                    "user": account,
                    "namespace": kubectl.namespace,
                },
            }
        ],
        "current-context": account,
    }


def test_the_operator_works_on_its_service_accounts_rbac_alone(
    kubectl: Kubectl,
    controlplane: ControlPlane,
    render_text: RenderText,
    nats_access: NatsAccess,
    database: str,
    tmp_path: Path,
) -> None:
    namespace = str(kubectl.namespace)
    manifest = render_text(f"--set=operator.watchNamespaces={{{namespace}}}", namespace=namespace)
    kubectl("apply", "--server-side", "-f", "-", input=without_crds(manifest))
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(token_kubeconfig(controlplane, kubectl, "herald-operator"))
    )

    stack = contextlib.ExitStack()
    telegram_url, _ = stack.enter_context(processes.emulator(tmp_path / "emulator.log"))
    variables = {
        "KUBECONFIG": str(kubeconfig),
        **nats_access.env(Component.OPERATOR),
        "HERALD_DATABASE_URL": database,
        "HERALD_OPERATOR_NAMESPACES": json.dumps([namespace]),
        "HERALD_SENDER_NAMESPACE": namespace,
        "HERALD_SENDER_DEPLOYMENT": "herald-sender",
        "HERALD_OPERATOR_LIVENESS_PORT": "0",
        "HERALD_OPERATOR_METRICS_PORT": "0",
        "HERALD_OPERATOR_TIMER_SECONDS": "0.5",
        "HERALD_OPERATOR_REFRESH_SECONDS": "1",
        # A process of its own: this test blocks, an emulator on its loop would not answer.
        "HERALD_TELEGRAM_API_URL": telegram_url,
        "HERALD_TOKEN_KEYS": keys.token_keys(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(variables)
    argv = [str(Path(sys.executable).parent / "herald-operator")]
    operator = ManagedProcess("herald-operator", argv, tmp_path / "operator.log", env).start()
    try:

        def replicas() -> int:
            return sender_replicas(kubectl)

        # Idle: the operator scales the senders from the Deployment's default 1 to 0.
        wait_until(lambda: replicas() == 0, timeout=60, what="scale to zero", process=operator)

        kubectl("create", "secret", "generic", "shop-bot", "--from-literal=token=123456:chart")
        # A Bot: the operator indexes Bots, verifies the token and writes the Bot's status.
        bot = {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Bot",
            "metadata": {"name": "shop-bot"},
            "spec": {"tokenSecretRef": {"name": "shop-bot"}},
        }
        kubectl("apply", "-f", "-", input=json.dumps(bot))
        broadcast = {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": "hello"},
            "spec": {
                "botRef": {"name": "shop-bot"},
                "content": {"text": "hello"},
                "audience": {"chatIds": [101, 102]},
            },
        }
        kubectl("apply", "-f", "-", input=json.dumps(broadcast))

        def status() -> dict[str, Any]:
            found: dict[str, Any] = json.loads(
                kubectl("get", "broadcast/hello", "-o", "json").stdout
            )
            return found.get("status") or {}

        # Read the bot Secret, patched the status, queued the work, scaled up one sender.
        wait_until(
            lambda: status().get("phase") == "Sending" and status().get("total") == 2,
            timeout=60,
            what="the Broadcast to be Sending",
            process=operator,
        )
        wait_until(lambda: replicas() == 1, timeout=60, what="scale to one", process=operator)
        verified = json.loads(kubectl("get", "bot/shop-bot", "-o", "json").stdout)["status"]
        assert verified["botId"] == 123456

        def events() -> list[Any]:
            found = kubectl(
                "get", "events", "--field-selector=involvedObject.name=hello", "-o", "json"
            )
            items: list[Any] = json.loads(found.stdout)["items"]
            return items

        # kopf posts Events from a queue of its own, shortly after the transition.
        wait_until(lambda: bool(events()), timeout=60, what="an Event", process=operator)

        # The finalizer: deletion completes only if the operator may patch it away.
        kubectl("delete", "broadcast/hello", "--timeout=60s", timeout=90)
    finally:
        operator.stop()
        stack.close()
    log = operator.log_path.read_text(errors="replace")
    # How the API server's 403 and kopf's fallback for a refused scan read in the log.
    for refusal in ("Forbidden", "Not enough permissions"):
        assert refusal not in log, operator.tail(40)
    assert "Traceback" not in log, operator.tail(60)


def call_api(
    url: str, *, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One request to herald-api: its status and JSON answer, error answers included."""
    headers = {"Idempotency-Key": f"chart-{uuid.uuid4().hex}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")


def test_herald_api_reviews_callers_on_its_service_accounts_rbac_alone(
    kubectl: Kubectl,
    controlplane: ControlPlane,
    render_text: RenderText,
    nats_access: NatsAccess,
    database: str,
    tmp_path: Path,
) -> None:
    """TokenReview and SubjectAccessReview asked with nothing but herald-api's own token: an
    application granted `create messages` on its Bot gets past both (to a 404, as no operator
    published the Bot here), the others are refused, and the API server refused herald-api
    nothing."""
    namespace = str(kubectl.namespace)
    manifest = render_text(f"--set=operator.watchNamespaces={{{namespace}}}", namespace=namespace)
    kubectl("apply", "--server-side", "-f", "-", input=without_crds(manifest))
    kubeconfig = tmp_path / "api.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(token_kubeconfig(controlplane, kubectl, "herald-api")))
    # The application's grant of examples/transactional-app.yaml (demo-app, for demo-bot),
    # and an application without one.
    kubectl("apply", "-f", str(repo_root() / "examples" / "transactional-app.yaml"))
    kubectl("create", "serviceaccount", "other-app")
    demo_app, other_app = (
        kubectl("create", "token", account, "--duration=1h").stdout.strip()
        for account in ("demo-app", "other-app")
    )
    asyncio.run(nats_access.create_streams())

    port = processes.free_port()
    variables = {
        "KUBECONFIG": str(kubeconfig),
        **nats_access.env(Component.API),
        "HERALD_DATABASE_URL": database,
        "HERALD_API_HOST": "127.0.0.1",
        "HERALD_API_PORT": str(port),
        "HERALD_TOKEN_KEYS": keys.token_keys(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "KUBECONFIG"))}
    env.update(variables)
    argv = [str(Path(sys.executable).parent / "herald-api")]
    api = ManagedProcess("herald-api", argv, tmp_path / "api.log", env).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: processes.http_ok(f"{base}/readyz"), timeout=60, what="/readyz", process=api
        )
        message = {"chatId": 42, "content": {"text": "Your order has shipped"}}

        def post(where: str, bot: str, token: str | None) -> int:
            url = f"{base}/v1/namespaces/{where}/bots/{bot}/messages"
            return call_api(url, token=token, body=message)[0]

        assert post(namespace, "demo-bot", demo_app) == 404
        missing = f"{base}/v1/namespaces/{namespace}/bots/demo-bot/messages/{uuid.uuid4()}"
        assert call_api(missing, token=demo_app)[0] == 404
        assert post(namespace, "demo-bot", None) == 401
        assert post(namespace, "demo-bot", "not-a-token") == 401
        assert post(namespace, "demo-bot", other_app) == 403
        assert post(namespace, "news-bot", demo_app) == 403
        assert post("kube-system", "demo-bot", demo_app) == 403
    finally:
        api.stop()
    log = api.log_path.read_text(errors="replace")
    assert "Forbidden" not in log, api.tail(40)
    assert "Traceback" not in log, api.tail(60)
