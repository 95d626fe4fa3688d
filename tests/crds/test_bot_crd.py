"""The Bot CRD on a real kube-apiserver: defaults, every rule refused with the contract's words,
the status subresource, and what kubectl shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.core.bots import Bot, BotSpec

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
INVALID: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "tests" / "data" / "invalid-bots.yaml").read_text()
)


def _manifest(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Bot",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def test_the_example_bot_applies_with_the_models_defaults(kubectl: Any) -> None:
    kubectl("apply", "-f", str(ROOT / "examples" / "bot.yaml"))
    kubectl("apply", "-f", "-", input=_manifest("bare", {"tokenSecretRef": {"name": "t"}}))
    for name, path in (("demo-bot", ROOT / "examples" / "bot.yaml"), ("bare", None)):
        stored = json.loads(kubectl("get", "bot", name, "-o", "json").stdout)
        spec = (
            yaml.safe_load(path.read_text())["spec"] if path else {"tokenSecretRef": {"name": "t"}}
        )
        expected = BotSpec.model_validate(spec)
        assert stored["spec"] == expected.model_dump(mode="json", exclude_none=True)
        assert Bot.model_validate(stored).spec == expected


@pytest.mark.parametrize("case", INVALID, ids=[case["id"] for case in INVALID])
def test_an_invalid_bot_is_refused(kubectl: Any, case: dict[str, Any]) -> None:
    result = kubectl("apply", "-f", "-", input=_manifest(case["id"], case["spec"]), check=False)
    assert result.returncode != 0, result.stdout
    assert (case.get("server") or case["message"]) in result.stderr
    assert kubectl("get", "bots", "-o", "name").stdout.strip() == ""


def test_status_is_a_subresource_and_the_columns_show_it(kubectl: Any) -> None:
    kubectl("apply", "-f", "-", input=_manifest("shop", {"tokenSecretRef": {"name": "t"}}))
    status = {
        "botId": 123456,
        "username": "shop_bot",
        "subscribers": {"active": 42, "inactive": 3},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Verified",
                "message": "getMe: @shop_bot (123456).",
                "lastTransitionTime": "2026-12-01T09:00:00Z",
            }
        ],
    }
    kubectl(
        "patch",
        "bot",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    table = kubectl("get", "bots").stdout.splitlines()
    assert table[0].split() == ["NAME", "USERNAME", "READY", "ACTIVE", "AGE"]
    assert table[1].split()[:4] == ["shop", "shop_bot", "True", "42"]
    wide = kubectl("get", "bots", "-o", "wide").stdout.splitlines()
    assert "Verified" in wide[1] and "123456" in wide[1]
    explained = " ".join(
        kubectl("explain", "bot.spec.updates.webhook.secretTokenRef").stdout.split()
    )
    assert "anyone who reaches the URL could forge an admin's update" in explained
    assert kubectl("get", "herald", "-o", "name").stdout.strip() == "bot.herald.dev/shop"
