"""The Grafana dashboard and the Prometheus alerts the chart ships use only metrics, labels
and label values that the operator, the sender and the bot really register.

Expressions are parsed with promql-parser (the Prometheus parser, ported): a syntax error
fails here, not in Prometheus. Names come from the components' own registries, never from a
list kept by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from herald.api.metrics import Metrics as ApiMetrics
from herald.bot.metrics import Metrics as BotMetrics
from herald.core.statuses import ConditionStatus, ConditionType, Phase
from herald.operator.metrics import BroadcastView
from herald.operator.metrics import Metrics as OperatorMetrics
from herald.sender.metrics import Metrics as SenderMetrics

FILES = Path(__file__).resolve().parents[2] / "charts" / "herald" / "files"
ALERTS = FILES / "alerts.yaml"
DASHBOARD = FILES / "grafana-dashboard.json"

# Labels Prometheus adds to every scraped series (target and Kubernetes discovery labels).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container"})
# What the exposition adds to a family's name, by type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
# Grafana's variables, replaced by what Grafana would put there.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": ".*"}
SEVERITIES = {"critical", "warning", "info"}


@dataclass
class Exposed:
    """One series name as scraped: its labels and the label values seen."""

    labels: set[str] = field(default_factory=set)
    values: dict[str, set[str]] = field(default_factory=dict)


def _registries() -> Iterator[CollectorRegistry]:
    operator = OperatorMetrics()
    # One Broadcast in play, so the per-Broadcast families show every label value they take.
    operator.observe(
        "uid",
        BroadcastView(
            namespace="ns",
            name="b",
            phase=Phase.SENDING,
            paused=False,
            messages_per_second=25.0,
            recipients=(
                ("pending", 1),
                ("delivered", 1),
                ("failed", 0),
                ("blocked", 0),
                ("uncertain", 0),
            ),
            conditions=tuple((c.value, ConditionStatus.TRUE.value) for c in ConditionType),
            finished=False,
        ),
    )
    yield operator.registry
    yield SenderMetrics().registry
    yield BotMetrics().registry
    yield ApiMetrics().registry


def registered() -> dict[str, Exposed]:
    exposed: dict[str, Exposed] = {}
    for registry in _registries():
        for family in registry.collect():
            for suffix in SUFFIXES[family.type]:
                exposed.setdefault(family.name + suffix, Exposed())
            for sample in family.samples:
                series = exposed.setdefault(sample.name, Exposed())
                for label, value in sample.labels.items():
                    series.labels.add(label)
                    series.values.setdefault(label, set()).add(value)
    return exposed


def _declared_labels() -> dict[str, set[str]]:
    """Label names of every instrument, children or not (a labelled family without children
    shows no samples, hence no labels, in a scrape)."""
    declared: dict[str, set[str]] = {}
    for metrics in (OperatorMetrics(), SenderMetrics(), BotMetrics(), ApiMetrics()):
        for instrument in vars(metrics).values():
            name = getattr(instrument, "_name", None)
            kind = getattr(instrument, "_type", None)
            if isinstance(name, str) and kind in SUFFIXES:
                for suffix in SUFFIXES[kind]:
                    declared.setdefault(name + suffix, set()).update(instrument._labelnames)
    return declared


@pytest.fixture(scope="module")
def metrics() -> dict[str, Exposed]:
    exposed = registered()
    for name, labels in _declared_labels().items():
        exposed.setdefault(name, Exposed()).labels.update(labels)
    for name, series in exposed.items():
        if name.endswith("_bucket"):
            series.labels.add("le")
    return exposed


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def problems(expr: str, metrics: dict[str, Exposed]) -> list[str]:
    """What in ``expr`` names something no component registers."""
    found = []
    for selector in selectors(expr):
        name = selector.name
        if name is None or name not in metrics:
            found.append(f"unknown metric {name!r}")
            continue
        series = metrics[name]
        for matcher in selector.matchers.matchers:
            if matcher.name == "__name__":
                continue
            if matcher.name not in series.labels | TARGET_LABELS:
                found.append(f"{name} has no label {matcher.name!r}")
                continue
            known = series.values.get(matcher.name)
            if not known or matcher.op not in (
                promql_parser.MatchOp.Equal,
                promql_parser.MatchOp.Re,
            ):
                continue
            wanted = (
                matcher.value.split("|")
                if matcher.op == promql_parser.MatchOp.Re
                else [matcher.value]
            )
            for value in wanted:
                if re.fullmatch(r"[\w-]+", value) and value not in known:
                    found.append(
                        f"{name}{{{matcher.name}}} never takes {value!r} (known: {sorted(known)})"
                    )
    return found


# --- alerts ----------------------------------------------------------------------------------


def load_alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())
    assert isinstance(groups, list), "alerts.yaml is a list of rule groups"
    return groups


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_alerts() for rule in group["rules"]]


def test_alerts_are_rule_groups_of_complete_rules() -> None:
    groups = load_alerts()
    assert groups
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names))
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"}, group["name"]
        assert group["rules"], group["name"]
    alerts = [rule["alert"] for rule in alert_rules()]
    assert len(alerts) == len(set(alerts))
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert re.fullmatch(r"Herald[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]


def test_alerts_cover_what_operators_watch() -> None:
    watched = " ".join(rule["expr"] for rule in alert_rules())
    for metric in (
        "herald_broadcast_status_condition",  # stuck Reconciling
        "herald_broadcast_recipients",  # backlog not draining
        "herald_sender_messages_total",  # error ratio, 429s
        "herald_operator_reconcile_total",  # reconcile errors
    ):
        assert metric in watched


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_expression_uses_registered_metrics(
    rule: dict[str, Any], metrics: dict[str, Exposed]
) -> None:
    assert problems(rule["expr"], metrics) == []


# --- dashboard -------------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    return [panel for panel in load_dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and refId, expression with Grafana's variables filled in)."""
    queries = []
    for panel in dashboard_panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((f"{panel['title']}/{target['refId']}", expr))
    return queries


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        assert position["x"] >= 0 and position["x"] + position["w"] <= 24, panel["title"]
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    # Every $variable a query uses is defined (or is one of Grafana's own).
    for _, expr in dashboard_queries():
        assert "$" not in expr, expr


def test_dashboard_shows_rate_backlog_results_errors_and_pauses() -> None:
    shown = " ".join(expr for _, expr in dashboard_queries())
    for metric in (
        "herald_broadcast_rate_limit",
        "herald_broadcast_recipients",
        "herald_sender_recipients_total",
        "herald_sender_messages_total",
        "herald_operator_reconcile_errors_total",
        "herald_broadcasts_paused",
    ):
        assert metric in shown


@pytest.mark.parametrize(
    ("where", "expr"), dashboard_queries(), ids=[where for where, _ in dashboard_queries()]
)
def test_dashboard_query_uses_registered_metrics(
    where: str, expr: str, metrics: dict[str, Exposed]
) -> None:
    assert problems(expr, metrics) == [], where


def test_dashboard_variables_query_registered_labels(metrics: dict[str, Exposed]) -> None:
    for variable in load_dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
        assert found, variable["definition"]
        metric, label = found.groups()
        assert label in metrics[metric].labels, variable["definition"]


# --- the check itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("rate(herald_sender_mesages_total[5m])", "unknown metric"),
        ('herald_sender_messages_total{outcome="ok"}', "has no label"),
        ('herald_sender_messages_total{result="okay"}', "never takes"),
        ('herald_broadcast_phase{phase=~"Sending|Runing"}', "never takes"),
        ("herald_sender_in_flight_total", "unknown metric"),
    ],
    ids=["misspelt", "wrong-label", "wrong-value", "wrong-alternative", "gauge-with-total"],
)
def test_the_check_catches_mistakes(expr: str, complaint: str, metrics: dict[str, Exposed]) -> None:
    assert any(complaint in problem for problem in problems(expr, metrics))


def test_a_syntax_error_fails() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        selectors("sum(rate(herald_sender_messages_total[5m])")
