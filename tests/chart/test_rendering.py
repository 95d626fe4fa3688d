"""The chart as rendered by the pinned helm: lint, schema, and the contracts it must keep with
the code (settings names, the CRD, the bot's Role, the sender's shutdown, herald-api's Service
and reviews, no inlined secret)."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from herald.api.settings import ApiSettings
from herald.bot.settings import BotSettings
from herald.core.sealing import KeyRing
from herald.core.settings import (
    DatabaseSettings,
    LogSettings,
    NatsSettings,
    TelegramSettings,
    TokenKeySettings,
)
from herald.dev import tools
from herald.dev.kubectl import repo_root
from herald.operator.settings import OperatorSettings, ScalingSettings, SenderTarget
from herald.sender.settings import SenderSettings

Render = Callable[..., list[Any]]
ROOT = repo_root()
SHARED: tuple[type[BaseSettings], ...] = (
    NatsSettings,
    DatabaseSettings,
    LogSettings,
    TokenKeySettings,
)
SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "operator": (*SHARED, TelegramSettings, OperatorSettings, ScalingSettings, SenderTarget),
    "sender": (*SHARED, TelegramSettings, SenderSettings),
    "bot": (*SHARED, TelegramSettings, BotSettings),
    # No Telegram: herald-api queues messages, the senders send them.
    "api": (*SHARED, ApiSettings),
}
COMPONENTS = ("operator", "sender", "api", "bot")
# A NATS identity of each kind, and TLS with a private CA.
NATS_AUTH = (
    "--set=nats.tls.caSecret=nats-ca",
    "--set=nats.tls.serverName=nats.nats.svc",
    "--set=nats.auth.operator.existingSecret=herald-nats-operator",
    "--set=nats.auth.operator.tokenKey=token",
    "--set=nats.auth.sender.user=herald-sender",
    "--set=nats.auth.sender.existingSecret=herald-nats-sender",
    "--set=nats.auth.sender.passwordKey=password",
    "--set=nats.auth.sender.tlsSecret=herald-sender-tls",
    "--set=nats.auth.bot.existingSecret=herald-nats-bot",
    "--set=nats.auth.bot.credsKey=bot.creds",
    "--set=nats.auth.api.existingSecret=herald-nats-api",
    "--set=nats.auth.api.nkeySeedKey=seed",
)
# Every optional part on at once.
EVERYTHING = (
    "--set=bot.enabled=true",
    "--set=bot.webhook.url=https://bot.example.com/telegram/webhook",
    "--set=bot.webhook.secretKey=webhookSecret",
    "--set=bot.listNamespaces={marketing}",
    "--set=bot.podDisruptionBudget.enabled=true",
    "--set=operator.podDisruptionBudget.enabled=true",
    "--set=metrics.serviceMonitor.enabled=true",
    "--set=metrics.prometheusRule.enabled=true",
    "--set=grafanaDashboard.enabled=true",
    "--set=networkPolicy.enabled=true",
    "--set=networkPolicy.egress[0].ports[0].port=4222",
    "--set=networkPolicy.apiFrom[0].namespaceSelector.matchLabels.team=shop",
    "--set=nats.existingSecret=herald-nats",
    *NATS_AUTH,
)


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def by_kind(objects: list[Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def deployment(objects: list[Any], component: str) -> dict[str, Any]:
    (found,) = (
        o
        for o in by_kind(objects, "Deployment")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    )
    return found


def container(objects: list[Any], component: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment(objects, component)["spec"]["template"]["spec"][
        "containers"
    ]
    (found,) = containers
    return found


def env(objects: list[Any], component: str) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(objects, component)["env"]}


def test_the_chart_lints_with_defaults_and_with_every_option() -> None:
    for args in ((), EVERYTHING):
        result = tools.helm("lint", "--strict", str(ROOT / "charts" / "herald"), *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--set=bogus=1", "additional properties 'bogus' not allowed"),
        ("--set=sender.shutdownSeconds=-1", "at '/sender/shutdownSeconds': minimum: got -1"),
        ("--set=logs.format=yaml", "at '/logs/format'"),
        ("--set=database.existingSecret=", "at '/database/existingSecret'"),
        ("--set=operator.watchNamespaces={Not_A_Name}", "at '/operator/watchNamespaces/0'"),
        ("--set=operator.extraEnv[0].name=PATH", "at '/operator/extraEnv/0/name'"),
        ("--set=image.digest=latest", "at '/image/digest'"),
        ("--set-string=operator.metricsPort=http", "at '/operator/metricsPort'"),
        ("--set=api.queueBound=0", "at '/api/queueBound': minimum: got 0"),
        ("--set=api.service.type=External", "at '/api/service/type'"),
    ],
    ids=[
        "unknown-key",
        "negative-grace",
        "log-format",
        "no-db-secret",
        "bad-namespace",
        "foreign-env",
        "bad-digest",
        "port-not-int",
        "api-no-queue",
        "api-service-type",
    ],
)
def test_the_schema_rejects_bad_values_with_a_readable_error(flag: str, message: str) -> None:
    result = tools.helm("template", "herald", str(ROOT / "charts" / "herald"), flag)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


def test_the_chart_ships_the_repository_crd_exactly(render: Render, chart: Path) -> None:
    source = ROOT / "crds" / "broadcasts.herald.dev.yaml"
    shipped = chart / "files" / "crds" / source.name
    assert shipped.read_bytes() == source.read_bytes(), (
        f"{shipped} differs from {source}: cp {source} {shipped}"
    )
    assert sorted(p.name for p in (chart / "files" / "crds").iterdir()) == sorted(
        p.name for p in (ROOT / "crds").glob("*.yaml")
    )
    rendered = {c["metadata"]["name"]: c for c in by_kind(render(), "CustomResourceDefinition")}
    assert sorted(rendered) == ["bots.herald.dev", "broadcasts.herald.dev"]
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        assert (chart / "files" / "crds" / path.name).read_bytes() == path.read_bytes()
        expected = yaml.safe_load(path.read_text())
        crd = rendered[expected["metadata"]["name"]]
        assert crd["spec"] == expected["spec"]
        assert crd["metadata"]["labels"].items() >= expected["metadata"]["labels"].items()
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_the_crd_can_be_left_out_or_left_to_uninstall(render: Render) -> None:
    assert by_kind(render("--set=crds.enabled=false"), "CustomResourceDefinition") == []
    for crd in by_kind(render("--set=crds.keep=false"), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_the_bot_role_is_bot_rbac_yaml(render: Render) -> None:
    documents = list(yaml.safe_load_all((ROOT / "bot" / "rbac.yaml").read_text()))
    (source,) = (d for d in documents if d["kind"] == "Role")
    objects = render("--set=bot.enabled=true", "--set=bot.listNamespaces={marketing}")
    roles = [r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "herald-bot"]
    assert {r["metadata"]["namespace"] for r in roles} == {"herald", "marketing"}
    for role in roles:
        assert role["rules"] == source["rules"]


@pytest.mark.parametrize(
    "args",
    [(), ("--set=operator.scaling.manageReplicas=false",), EVERYTHING],
    ids=["defaults", "hpa-owned", "everything"],
)
def test_the_chart_never_sets_the_sender_replicas(render: Render, args: tuple[str, ...]) -> None:
    assert "replicas" not in deployment(render(*args), "sender")["spec"]


def test_the_sender_gets_its_shutdown_time_and_a_longer_grace_period(render: Render) -> None:
    objects = render("--set=sender.shutdownSeconds=40")
    grace = deployment(objects, "sender")["spec"]["template"]["spec"]
    shutdown = float(env(objects, "sender")["HERALD_SENDER_SHUTDOWN_SECONDS"]["value"])
    assert shutdown == 40
    assert grace["terminationGracePeriodSeconds"] == 45

    values = yaml.safe_load((ROOT / "charts" / "herald" / "values.yaml").read_text())
    assert (
        values["sender"]["shutdownSeconds"]
        == SenderSettings.model_fields["shutdown_seconds"].default
    )


def test_the_chart_defaults_are_the_settings_defaults(chart: Path) -> None:
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert (
        values["operator"]["livenessPort"] == OperatorSettings.model_fields["liveness_port"].default
    )
    assert (
        values["operator"]["metricsPort"] == OperatorSettings.model_fields["metrics_port"].default
    )
    assert values["sender"]["metricsPort"] == SenderSettings.model_fields["metrics_port"].default
    assert values["bot"]["metricsPort"] == BotSettings.model_fields["metrics_port"].default
    assert values["sender"]["healthPort"] == SenderSettings.model_fields["health_port"].default
    assert values["bot"]["healthPort"] == BotSettings.model_fields["health_port"].default
    assert values["bot"]["existingSecret"] == BotSettings.model_fields["secret_name"].default
    scaling = ScalingSettings.model_fields
    assert values["operator"]["scaling"] == {
        "manageReplicas": scaling["manage_replicas"].default,
        "minReplicas": scaling["min_replicas"].default,
        "maxReplicas": scaling["max_replicas"].default,
    }
    assert values["logs"]["format"] == "json"
    api = ApiSettings.model_fields
    assert {
        "port": values["api"]["port"],
        "idempotency_hours": values["api"]["idempotencyHours"],
        "auth_cache_seconds": values["api"]["authCacheSeconds"],
        "queue_bound": values["api"]["queueBound"],
        "max_body_bytes": values["api"]["maxBodyBytes"],
        "callback_attempts": values["api"]["callbackAttempts"],
    } == {
        name: api[name].default
        for name in (
            "port",
            "idempotency_hours",
            "auth_cache_seconds",
            "queue_bound",
            "max_body_bytes",
            "callback_attempts",
        )
    }


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_variable_the_chart_sets_is_a_setting_of_that_component(
    render: Render, component: str
) -> None:
    allowed = set().union(*(env_names(cls) for cls in SETTINGS[component]))
    names = set(env(render(*EVERYTHING), component))
    assert names <= allowed, names - allowed
    assert {"HERALD_NATS_URL", "HERALD_DATABASE_URL", "HERALD_LOG_FORMAT"} <= names


def test_the_operator_is_told_where_the_sender_deployment_is(render: Render) -> None:
    objects = render(namespace="messaging", release="news")
    variables = env(objects, "operator")
    sender = deployment(objects, "sender")["metadata"]
    assert variables["HERALD_SENDER_DEPLOYMENT"]["value"] == sender["name"]
    assert variables["HERALD_SENDER_NAMESPACE"]["value"] == sender["namespace"] == "messaging"


def test_the_operator_is_one_replica_recreated_with_probes_on_its_liveness_port(
    render: Render,
) -> None:
    objects = render("--set=operator.livenessPort=8181")
    spec = deployment(objects, "operator")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    main = container(objects, "operator")
    assert env(objects, "operator")["HERALD_OPERATOR_LIVENESS_PORT"]["value"] == "8181"
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"liveness": 8181, "metrics": 9101}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "liveness"}


def test_secrets_are_referenced_by_name_never_inlined(render: Render) -> None:
    objects = render(*EVERYTHING)
    # The one Secret the chart makes holds a key it drew itself, never a value of values.yaml.
    (keys,) = by_kind(objects, "Secret")
    assert keys["metadata"]["name"] == "herald-token-keys"
    assert keys["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert KeyRing.parse(base64.b64decode(keys["data"]["keys"]).decode()).primary == "k1"
    assert by_kind(render(*EVERYTHING, "--set=tokenKeys.existingSecret=mine"), "Secret") == []
    assert (
        volume(render("--set=tokenKeys.existingSecret=mine"), "sender", "token-keys")["secretName"]
        == "mine"
    )
    secret_refs = {
        "operator": {"HERALD_DATABASE_URL", "HERALD_NATS_URL", "HERALD_NATS_TOKEN"},
        "sender": {"HERALD_DATABASE_URL", "HERALD_NATS_URL", "HERALD_NATS_PASSWORD"},
        "bot": {
            "HERALD_DATABASE_URL",
            "HERALD_NATS_URL",
            "HERALD_BOT_TOKEN",
            "HERALD_BOT_ADMINS",
            "HERALD_BOT_WEBHOOK_SECRET",
        },
        "api": {"HERALD_DATABASE_URL", "HERALD_NATS_URL"},
    }
    for component, names in secret_refs.items():
        variables = env(objects, component)
        for name in names:
            assert "value" not in variables[name], (component, name)
            assert variables[name]["valueFrom"]["secretKeyRef"]["name"], (component, name)
    # Without a NATS Secret the URL is plain configuration.
    assert env(render(), "sender")["HERALD_NATS_URL"]["value"] == "nats://nats:4222"


def test_every_component_runs_locked_down_with_a_scratch_tmp(render: Render) -> None:
    objects = render(*EVERYTHING)
    for component in COMPONENTS:
        pod = deployment(objects, component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (main,) = pod["containers"]
        context = main["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
        assert main["resources"]["requests"] and main["resources"]["limits"]


def test_only_components_that_call_the_api_get_a_token(render: Render) -> None:
    objects = render("--set=bot.enabled=true")
    tokens = {
        component: deployment(objects, component)["spec"]["template"]["spec"][
            "automountServiceAccountToken"
        ]
        for component in COMPONENTS
    }
    assert tokens == {"operator": True, "sender": False, "api": True, "bot": True}
    accounts = {a["metadata"]["name"]: a for a in by_kind(objects, "ServiceAccount")}
    assert accounts["herald-sender"]["automountServiceAccountToken"] is False


def test_each_component_runs_its_console_script(render: Render) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    objects = render("--set=bot.enabled=true")
    for component in COMPONENTS:
        assert container(objects, component)["command"] == [f"herald-{component}"]
        assert f"herald-{component}" in scripts


def test_operator_rbac_follows_the_watched_namespaces(render: Render) -> None:
    def operators(objects: list[Any], kind: str) -> list[dict[str, Any]]:
        return [o for o in by_kind(objects, kind) if o["metadata"]["name"] == "herald-operator"]

    clusterwide = render()
    (cluster_role,) = operators(clusterwide, "ClusterRole")
    assert {"secrets"} <= {r for rule in cluster_role["rules"] for r in rule["resources"]}

    namespaced = render("--set=operator.watchNamespaces={shop,news}")
    assert operators(namespaced, "ClusterRole") == operators(namespaced, "ClusterRoleBinding") == []
    roles = {
        (role["metadata"]["namespace"], role["metadata"]["name"])
        for role in by_kind(namespaced, "Role")
    }
    assert roles == {
        ("shop", "herald-operator"),
        ("news", "herald-operator"),
        ("herald", "herald-operator-scaling"),
    }
    assert env(namespaced, "operator")["HERALD_OPERATOR_NAMESPACES"]["value"] == '["shop","news"]'
    (scaling,) = by_kind(namespaced, "Role")[-1:]
    assert scaling["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": ["herald-sender"],
            "verbs": ["get", "patch"],
        }
    ]


def test_service_monitors_scrape_each_metrics_port(render: Render) -> None:
    objects = render(*EVERYTHING)
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    monitors = by_kind(objects, "ServiceMonitor")
    assert len(monitors) == 4
    for monitor in monitors:
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        if component == "api":
            # herald-api's /metrics is on its one port, behind the Service applications call.
            assert endpoint["port"] == "http"
            service = services["herald-api"]
            assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
            assert service["metadata"]["labels"].items() >= (
                monitor["spec"]["selector"]["matchLabels"].items()
            )
            continue
        assert endpoint["port"] == "metrics"
        service = services[f"herald-{component}-metrics"]
        assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        (port,) = service["spec"]["ports"]
        assert port["name"] == "metrics"
        ports = {p["name"]: p["containerPort"] for p in container(objects, component)["ports"]}
        assert port["port"] == ports["metrics"]
        assert env(objects, component)[f"HERALD_{component.upper()}_METRICS_PORT"]["value"] == (
            str(ports["metrics"])
        )


def test_the_prometheus_rule_carries_the_shipped_alerts(render: Render, chart: Path) -> None:
    (rule,) = by_kind(render("--set=metrics.prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load((chart / "files" / "alerts.yaml").read_text())
    assert by_kind(render(), "PrometheusRule") == []


def test_the_dashboard_config_map_carries_the_shipped_dashboard(
    render: Render, chart: Path
) -> None:
    objects = render("--set=grafanaDashboard.enabled=true")
    (config_map,) = by_kind(objects, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    assert json.loads(text) == json.loads((chart / "files" / "grafana-dashboard.json").read_text())
    assert by_kind(render(), "ConfigMap") == []


def test_network_policies_open_metrics_and_keep_dns_when_egress_is_closed(
    render: Render,
) -> None:
    assert by_kind(render(), "NetworkPolicy") == []
    policies = by_kind(render(*EVERYTHING), "NetworkPolicy")
    assert len(policies) == 4
    for policy in policies:
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert {"port": 53, "protocol": "UDP"} in policy["spec"]["egress"][0]["ports"]
        assert policy["spec"]["egress"][1] == {"ports": [{"port": 4222}]}
    bot = next(p for p in policies if p["metadata"]["name"] == "herald-bot")
    assert [rule["ports"][0]["port"] for rule in bot["spec"]["ingress"]] == ["metrics", "webhook"]
    # herald-api: the scrapers, and the applications of networkPolicy.apiFrom, on its one port.
    api = next(p for p in policies if p["metadata"]["name"] == "herald-api")
    scrapers, applications = api["spec"]["ingress"]
    assert scrapers == {"ports": [{"port": "http", "protocol": "TCP"}]}
    assert applications == {
        "ports": [{"port": "http", "protocol": "TCP"}],
        "from": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}],
    }


def test_disruption_budgets_never_block_a_drain(render: Render) -> None:
    budgets = by_kind(render(*EVERYTHING), "PodDisruptionBudget")
    assert len(budgets) == 4
    assert all(b["spec"] == {**b["spec"], "maxUnavailable": 1} for b in budgets)
    assert all("minAvailable" not in b["spec"] for b in budgets)


def volume(objects: list[Any], component: str, name: str) -> dict[str, Any]:
    pod = deployment(objects, component)["spec"]["template"]["spec"]
    (found,) = (v for v in pod["volumes"] if v["name"] == name)
    mounts = {m["name"]: m for m in container(objects, component)["volumeMounts"]}
    assert mounts[name]["readOnly"] is True
    return {"mountPath": mounts[name]["mountPath"], **found["secret"]}


def test_each_component_gets_its_own_nats_identity_and_the_tls_files(render: Render) -> None:
    objects = render("--set=bot.enabled=true", *NATS_AUTH)
    operator, sender, api, bot = (env(objects, c) for c in COMPONENTS)

    assert operator["HERALD_NATS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "herald-nats-operator",
        "key": "token",
    }
    assert sender["HERALD_NATS_USER"]["value"] == "herald-sender"
    assert sender["HERALD_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "herald-nats-sender",
        "key": "password",
    }
    assert "HERALD_NATS_USER" not in operator and "HERALD_NATS_TOKEN" not in sender

    creds = volume(objects, "bot", "nats-auth")
    assert creds["secretName"] == "herald-nats-bot"
    assert creds["items"] == [{"key": "bot.creds", "path": "user.creds"}]
    assert creds["defaultMode"] == 0o440
    assert bot["HERALD_NATS_CREDS_FILE"]["value"] == f"{creds['mountPath']}/user.creds"

    seed = volume(objects, "api", "nats-auth")
    assert seed["secretName"] == "herald-nats-api"
    assert seed["items"] == [{"key": "seed", "path": "seed.nk"}]
    assert api["HERALD_NATS_NKEY_SEED_FILE"]["value"] == f"{seed['mountPath']}/seed.nk"

    client = volume(objects, "sender", "nats-client-tls")
    assert client["secretName"] == "herald-sender-tls"
    assert sender["HERALD_NATS_TLS_CERT_FILE"]["value"] == f"{client['mountPath']}/tls.crt"
    assert sender["HERALD_NATS_TLS_KEY_FILE"]["value"] == f"{client['mountPath']}/tls.key"
    for component, variables in zip(COMPONENTS, (operator, sender, api, bot), strict=True):
        ca = volume(objects, component, "nats-ca")
        assert ca["secretName"] == "nats-ca"
        assert variables["HERALD_NATS_TLS_CA_FILE"]["value"] == f"{ca['mountPath']}/ca.crt"
        assert variables["HERALD_NATS_TLS_SERVER_NAME"]["value"] == "nats.nats.svc"

    # Nothing set: no identity, no NATS volume, as before.
    plain = render("--set=bot.enabled=true")
    for component in COMPONENTS:
        names = set(env(plain, component))
        assert {n for n in names if n.startswith("HERALD_NATS_")} == {"HERALD_NATS_URL"}
        mounts = container(plain, component)["volumeMounts"]
        assert [m["name"] for m in mounts] == ["tmp", "token-keys"]


def test_the_settings_validate_what_the_chart_renders(render: Render) -> None:
    """The variables of each identity are accepted together by NatsSettings."""
    objects = render("--set=bot.enabled=true", *NATS_AUTH)
    for component in COMPONENTS:
        variables = {
            name: item.get("value", "from-a-secret")
            for name, item in env(objects, component).items()
            if name.startswith("HERALD_NATS_")
        }
        fields = {name.removeprefix("HERALD_NATS_").lower(): v for name, v in variables.items()}
        fields["url"] = "tls://nats:4222"  # the URL Secret's value
        NatsSettings.model_validate(fields)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            ("--set=nats.auth.sender.user=herald-sender",),
            "nats.auth.sender.user needs nats.auth.sender.passwordKey",
            id="user-without-password",
        ),
        pytest.param(
            ("--set=nats.auth.sender.tokenKey=token",),
            "nats.auth.sender.tokenKey names a key of nats.auth.sender.existingSecret, which is "
            "not set",
            id="key-without-secret",
        ),
        pytest.param(
            (
                "--set=nats.auth.operator.existingSecret=s",
                "--set=nats.auth.operator.tokenKey=token",
                "--set=nats.auth.operator.credsKey=creds",
            ),
            "nats.auth.operator: set one of user, tokenKey, nkeySeedKey and credsKey",
            id="two-ways",
        ),
    ],
)
def test_a_nats_identity_that_cannot_work_fails_to_render_with_a_reason(
    flags: tuple[str, ...], message: str
) -> None:
    result = tools.helm("template", "herald", str(ROOT / "charts" / "herald"), *flags)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_cluster_is_a_comma_separated_url_and_a_bad_one_is_refused(render: Render) -> None:
    objects = render("--set=nats.url=nats://a:4222\\,nats://b:4222")
    assert env(objects, "sender")["HERALD_NATS_URL"]["value"] == "nats://a:4222,nats://b:4222"
    result = tools.helm(
        "template", "herald", str(ROOT / "charts" / "herald"), "--set=nats.url=nats://a:4222\\,b"
    )
    assert "at '/nats/url'" in result.stderr


def api_objects(objects: list[Any]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "api"
    ]


def test_herald_api_is_replicas_behind_a_service_that_roll_without_losing_capacity(
    render: Render,
) -> None:
    objects = render()
    spec = deployment(objects, "api")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    main = container(objects, "api")
    assert main["ports"] == [{"name": "http", "containerPort": 8080}]
    assert env(objects, "api")["HERALD_API_PORT"]["value"] == "8080"
    assert main["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Serving on while the endpoints drop the pod, within Kubernetes' default grace of 30 s.
    assert main["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    assert "terminationGracePeriodSeconds" not in spec["template"]["spec"]

    (service,) = (s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "herald-api")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert spec["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()

    (budget,) = (b for b in by_kind(objects, "PodDisruptionBudget") if b in api_objects(objects))
    assert budget["spec"]["selector"] == spec["selector"]

    scaled = render("--set=api.replicas=5", "--set=api.port=9000", "--set=api.drainSeconds=0")
    assert deployment(scaled, "api")["spec"]["replicas"] == 5
    moved = container(scaled, "api")
    assert moved["ports"] == [{"name": "http", "containerPort": 9000}]
    assert env(scaled, "api")["HERALD_API_PORT"]["value"] == "9000"
    assert "lifecycle" not in moved


def test_herald_api_may_ask_for_reviews_and_get_broadcasts_and_nothing_else(
    render: Render,
) -> None:
    objects = render(namespace="messaging", release="news")
    roles = [r for r in by_kind(objects, "ClusterRole") if r in api_objects(objects)]
    (role,) = roles
    assert role["metadata"]["name"] == "news-herald-api"
    assert role["rules"] == [
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
        # The uid of a Broadcast whose ledger is read.
        {"apiGroups": ["herald.dev"], "resources": ["broadcasts"], "verbs": ["get"]},
    ]
    (binding,) = (b for b in by_kind(objects, "ClusterRoleBinding") if b in api_objects(objects))
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "news-herald-api",
    }
    pod = deployment(objects, "api")["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "messaging"}
    ]
    assert [a["metadata"]["name"] for a in by_kind(api_objects(objects), "ServiceAccount")] == [
        pod["serviceAccountName"]
    ]
    assert not [r for r in by_kind(objects, "Role") if r in api_objects(objects)]


def test_herald_api_takes_its_settings_from_values(render: Render) -> None:
    objects = render(
        "--set=api.idempotencyHours=48",
        "--set-json=api.authCacheSeconds=2.5",
        "--set=api.queueBound=500",
        "--set=api.maxBodyBytes=131072",
        "--set=api.callbackAttempts=3",
        "--set=api.extraEnv[0].name=HERALD_API_HOST",
        "--set=api.extraEnv[0].value=::",
    )
    variables = {
        name: item["value"] for name, item in env(objects, "api").items() if "value" in item
    }
    assert (
        variables.items()
        >= {
            "HERALD_API_IDEMPOTENCY_HOURS": "48",
            "HERALD_API_AUTH_CACHE_SECONDS": "2.5",
            "HERALD_API_QUEUE_BOUND": "500",
            "HERALD_API_MAX_BODY_BYTES": "131072",
            "HERALD_API_CALLBACK_ATTEMPTS": "3",
            "HERALD_API_HOST": "::",
            "HERALD_TOKEN_KEYS_FILE": "/etc/herald/token-keys/keys",
        }.items()
    )
    assert volume(objects, "api", "token-keys")["mountPath"] == "/etc/herald/token-keys"


def test_large_whole_numbers_reach_herald_api_as_integers(
    render: Render, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Helm reads a values file's numbers as floats, and would write a million as 1e+06."""
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"api": {"queueBound": 1_000_000, "maxBodyBytes": 4_194_304}}))
    variables = env(render(f"--values={values}"), "api")
    assert variables["HERALD_API_QUEUE_BOUND"]["value"] == "1000000"
    assert variables["HERALD_API_MAX_BODY_BYTES"]["value"] == "4194304"
    for name in ("HERALD_API_QUEUE_BOUND", "HERALD_API_MAX_BODY_BYTES"):
        monkeypatch.setenv(name, variables[name]["value"])
    assert ApiSettings().queue_bound == 1_000_000


def test_herald_api_can_be_left_out(render: Render) -> None:
    objects = render(*EVERYTHING, "--set=api.enabled=false")
    assert api_objects(objects) == []
    assert {d["metadata"]["name"] for d in by_kind(objects, "Deployment")} == {
        "herald-operator",
        "herald-sender",
        "herald-bot",
    }
