"""docs/gitops.md says what is tested: its Argo CD snippet is the tested health check, its
Flux health expressions judge the planner's statuses as the page claims, and its
ignoreDifferences rule names the field managers Herald's tools really use."""

from __future__ import annotations

import re
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from herald.bot.kubeapi import FIELD_MANAGER as BOT_FIELD_MANAGER
from herald.cli.kubeapi import FIELD_MANAGER as PLUGIN_FIELD_MANAGER
from herald.dev import samples
from herald.dev.kubectl import repo_root

PAGE = (repo_root() / "docs" / "gitops.md").read_text()


def _yaml_blocks() -> list[Any]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", PAGE, flags=re.S | re.M)
    return [yaml.safe_load(block) for block in blocks]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [b for b in _yaml_blocks() if isinstance(b, dict) and b.get("kind") == kind]


def test_the_argocd_snippet_is_the_tested_health_check() -> None:
    (config_map,) = _of_kind("ConfigMap")
    script = (repo_root() / samples.ARGOCD_HEALTH_DIR / "health.lua").read_text()
    assert config_map["data"]["resource.customizations.health.herald.dev_Broadcast"] == script


def test_ignore_differences_trusts_the_managers_that_pause() -> None:
    (application,) = _of_kind("Application")
    (rule,) = application["spec"]["ignoreDifferences"]
    assert (rule["group"], rule["kind"]) == ("herald.dev", "Broadcast")
    assert {BOT_FIELD_MANAGER, PLUGIN_FIELD_MANAGER} <= set(rule["managedFieldsManagers"])
    assert "RespectIgnoreDifferences=true" in application["spec"]["syncPolicy"]["syncOptions"]
    assert f"| `{BOT_FIELD_MANAGER}` |" in PAGE
    assert f"| `{PLUGIN_FIELD_MANAGER}` |" in PAGE


class CannotJudge(Exception):
    """An expression refers to a field the object does not have yet."""


def _flux_verdict(exprs: dict[str, str], obj: dict[str, Any]) -> str:
    """Flux's custom health check reader, in its documented order: a generation the status
    has not observed yet is InProgress; then inProgress, failed and current, the first true
    one deciding; none true is InProgress."""
    status = obj.get("status", {})
    observed = status.get("observedGeneration")
    if observed is not None and observed != obj["metadata"]["generation"]:
        return "InProgress"
    env = celpy.Environment()
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    for key, verdict in (
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ):
        if key not in exprs:
            continue
        program = env.program(env.compile(exprs[key]))
        try:
            result = program.evaluate(activation)
        except CELEvalError as exc:
            raise CannotJudge(exprs[key]) from exc
        if result:
            return verdict
    return "InProgress"


def _exprs(kustomization: str) -> dict[str, str]:
    (found,) = [k for k in _of_kind("Kustomization") if k["metadata"]["name"] == kustomization]
    (exprs,) = found["spec"]["healthCheckExprs"]
    assert (exprs["apiVersion"], exprs["kind"]) == ("herald.dev/v1alpha1", "Broadcast")
    return {k: v for k, v in exprs.items() if k not in ("apiVersion", "kind")}


ACCEPTED = {
    "materialising": "Current",
    "scheduled": "Current",
    "sending": "Current",
    "paused": "Current",
    "pause-not-yet-observed": "InProgress",
    "complete": "Current",
    "content-rejected": "Failed",
    "deadline-exceeded": "Failed",
    "secret-missing": "Failed",
    "budget-exhausted": "Failed",
}
UNTIL_SENT = {
    **ACCEPTED,
    "materialising": "InProgress",
    "sending": "InProgress",
}


@pytest.mark.parametrize(
    ("kustomization", "expected"),
    [("broadcasts", ACCEPTED), ("broadcasts-until-sent", UNTIL_SENT)],
)
def test_flux_health_expressions(kustomization: str, expected: dict[str, str]) -> None:
    exprs = _exprs(kustomization)
    objects = samples.objects()
    verdicts = {name: _flux_verdict(exprs, objects[name]) for name in expected}
    assert verdicts == expected
    # Before the operator's first status there is nothing to judge: never Current.
    with pytest.raises(CannotJudge):
        _flux_verdict(exprs, objects["unobserved"])
