"""herald.kube's clients on a real API server: Broadcasts as a field manager writes them,
token Secrets, and the errors each refusal becomes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from herald.core.statuses import BroadcastStatus
from herald.dev import processes, samples
from herald.dev.kubectl import Kubectl
from herald.kube.broadcasts import AsyncBroadcasts, Broadcasts
from herald.kube.connecting import load
from herald.kube.errors import Conflict, KubeError, NotFound, Unreachable
from herald.kube.secrets import Secrets
from herald.kube.tokens import Found, KeyNotFound, Malformed, SecretNotFound

pytestmark = pytest.mark.controlplane

MANAGER = "herald-test"


@pytest.fixture
def api(kubectl: Kubectl) -> Iterator[client.ApiClient]:
    api = client.ApiClient(load(kubeconfig=str(kubectl.kubeconfig), in_cluster=False).configuration)
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def broadcasts(api: client.ApiClient) -> Broadcasts:
    return Broadcasts(api, field_manager=MANAGER, timeout=10)


def manifest(name: str) -> dict[str, Any]:
    source = samples.objects()["sending"]
    return {
        "apiVersion": source["apiVersion"],
        "kind": source["kind"],
        "metadata": {"name": name},
        "spec": source["spec"],
    }


def managers(body: dict[str, Any]) -> set[str]:
    return {entry["manager"] for entry in body["metadata"].get("managedFields", ())}


def test_broadcasts(kubectl: Kubectl, broadcasts: Broadcasts) -> None:
    ns = kubectl.namespace or ""
    created = broadcasts.create(ns, manifest("one"))
    assert MANAGER in managers(created)
    broadcasts.create(ns, manifest("two"))
    assert broadcasts.get(ns, "one")["metadata"]["uid"] == created["metadata"]["uid"]

    names = {item["metadata"]["name"] for item in broadcasts.items([ns])}
    assert names == {"one", "two"}
    assert broadcasts.items([]) == []
    in_cluster = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in broadcasts.items()}
    assert {(ns, "one"), (ns, "two")} <= in_cluster
    assert created["metadata"]["uid"] in broadcasts.live_uids([ns])
    assert created["metadata"]["uid"] in broadcasts.live_uids(None)

    paused = broadcasts.set_paused(ns, "one", paused=True)
    assert paused["spec"]["paused"] is True
    assert paused["spec"]["content"] == created["spec"]["content"]  # only the one field

    status = BroadcastStatus.model_validate(samples.objects()["sending"]["status"])
    broadcasts.patch_status(ns, "one", status)
    written = json.loads(kubectl("get", "broadcast", "one", "-o", "json").stdout)
    assert BroadcastStatus.model_validate(written["status"]) == status

    broadcasts.delete(ns, "two")
    assert {i["metadata"]["name"] for i in broadcasts.items([ns])} == {"one"}


def test_refusals(kubectl: Kubectl, broadcasts: Broadcasts) -> None:
    ns = kubectl.namespace or ""
    with pytest.raises(NotFound, match='"absent" not found'):
        broadcasts.get(ns, "absent")
    with pytest.raises(NotFound):
        broadcasts.set_paused(ns, "absent", paused=True)
    broadcasts.create(ns, manifest("one"))
    with pytest.raises(Conflict, match="already exists"):
        broadcasts.create(ns, manifest("one"))
    invalid = manifest("two")
    invalid["spec"]["rate"]["messagesPerSecond"] = -1
    with pytest.raises(KubeError) as caught:
        broadcasts.create(ns, invalid)
    assert caught.value.status == 422


def test_no_answer_is_unreachable() -> None:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{processes.free_port()}"
    with client.ApiClient(configuration) as api, pytest.raises(Unreachable):
        Broadcasts(api, field_manager=MANAGER, timeout=5).get("default", "x")


async def test_async_broadcasts(kubectl: Kubectl, broadcasts: Broadcasts) -> None:
    ns = kubectl.namespace or ""
    calls = AsyncBroadcasts(broadcasts)
    await calls.create(ns, manifest("one"))
    assert (await calls.set_paused(ns, "one", paused=True))["spec"]["paused"] is True
    assert [i["metadata"]["name"] for i in await calls.items([ns])] == ["one"]
    assert (await calls.get(ns, "one"))["spec"]["paused"] is True
    await calls.delete(ns, "one")
    with pytest.raises(NotFound):
        await calls.get(ns, "one")


def test_token_secrets(kubectl: Kubectl, api: client.ApiClient) -> None:
    ns = kubectl.namespace or ""
    secrets = Secrets(api, timeout=10)
    assert secrets.data(ns, "bot") is None
    assert secrets.token(ns, "bot", "token") == SecretNotFound()
    kubectl(
        "create",
        "secret",
        "generic",
        "bot",
        "--from-literal=token=123:abc",
        "--from-literal=other=nonsense",
    )
    assert secrets.data(ns, "bot") == {
        "token": base64.b64encode(b"123:abc").decode(),
        "other": base64.b64encode(b"nonsense").decode(),
    }
    found = secrets.token(ns, "bot", "token")
    assert isinstance(found, Found)
    assert (found.token.get_secret_value(), found.bot_id) == ("123:abc", "123")
    assert secrets.token(ns, "bot", "missing") == KeyNotFound()
    assert secrets.token(ns, "bot", "other") == Malformed()
