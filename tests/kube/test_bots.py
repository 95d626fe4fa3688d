"""herald.kube.bots: a Bot's id once the operator verified its token, and a readable error
before that or when there is no such Bot; on a real API server with the shipped Bot CRD."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from herald.dev.kubectl import Kubectl
from herald.dev.systems import bot_manifest
from herald.kube import bots
from herald.kube.connecting import load
from herald.kube.errors import KubeError, NotFound


def _bot(status: dict[str, Any] | None) -> dict[str, Any]:
    body = bot_manifest("shop", "shop-token") | {"status": status}
    body["metadata"]["namespace"] = "marketing"
    return body


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param({"botId": 123456789, "username": "shop_bot"}, "123456789", id="integer"),
        pytest.param({"botId": "123456789"}, "123456789", id="digits"),
        pytest.param(None, 'Bot "marketing/shop" has no status.botId yet', id="no-status"),
        pytest.param({"username": "shop_bot"}, "has no status.botId yet", id="no-id"),
        pytest.param({"botId": "shop-bot"}, "'shop-bot', not a bot id", id="a-name"),
        pytest.param({"botId": True}, "True, not a bot id", id="a-boolean"),
        pytest.param({"botId": 0}, "0, not a bot id", id="zero"),
    ],
)
def test_the_id_a_status_names(status: dict[str, Any] | None, outcome: str) -> None:
    if outcome.isdigit():
        assert bots.bot_id_in(_bot(status)) == outcome
    else:
        with pytest.raises(KubeError, match=outcome):
            bots.bot_id_in(_bot(status))


@pytest.fixture
def api(kubectl: Kubectl) -> Iterator[client.ApiClient]:
    api = client.ApiClient(load(kubeconfig=str(kubectl.kubeconfig), in_cluster=False).configuration)
    yield api
    api.close()  # type: ignore[no-untyped-call]


def create_bot(kubectl: Kubectl, name: str, status: dict[str, Any] | None = None) -> None:
    """A Bot, and the status the operator would write once getMe answered."""
    kubectl("create", "-f", "-", input=json.dumps(bot_manifest(name, f"{name}-token")))
    if status is not None:
        patch = json.dumps({"status": status})
        kubectl("patch", "bot", name, "--subresource=status", "--type=merge", "-p", patch)


@pytest.mark.controlplane
def test_a_verified_bot_gives_its_id(kubectl: Kubectl, api: client.ApiClient) -> None:
    create_bot(kubectl, "shop", {"botId": 123456789, "username": "shop_bot"})
    assert kubectl.namespace is not None
    assert bots.bot_id_of(api, kubectl.namespace, "shop", timeout=10) == "123456789"


@pytest.mark.controlplane
def test_a_bot_not_verified_yet_says_so(kubectl: Kubectl, api: client.ApiClient) -> None:
    create_bot(kubectl, "fresh")
    assert kubectl.namespace is not None
    with pytest.raises(bots.BotNotVerified, match=r"has no status.botId yet"):
        bots.bot_id_of(api, kubectl.namespace, "fresh", timeout=10)


@pytest.mark.controlplane
def test_no_such_bot(kubectl: Kubectl, api: client.ApiClient) -> None:
    assert kubectl.namespace is not None
    with pytest.raises(NotFound, match="not found"):
        bots.bot_id_of(api, kubectl.namespace, "absent", timeout=10)
