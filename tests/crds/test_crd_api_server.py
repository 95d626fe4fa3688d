"""The Broadcast CRD on a real kube-apiserver: schema, CEL rules, subresources, kubectl UX.

The `controlplane` and `kubectl` fixtures (tests/conftest.py) install crds/ and give each test
a fresh namespace; `kubectl(...)` runs the kubectl binary with -n set to it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.core import broadcasts
from herald.core.broadcasts import Broadcast, BroadcastSpec
from herald.core.contents import Content
from herald.core.statuses import BroadcastStatus

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").glob("*.yaml")
    if [d["kind"] for d in yaml.safe_load_all(p.read_text())] == ["Broadcast"]
)


class _CaseLoader(yaml.SafeLoader):
    """Reads tests/data/invalid-broadcasts.yaml, where `!repeat [x, N]` builds long strings."""


def _repeat(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> str:
    text, times = loader.construct_sequence(node)
    return str(text) * int(times)


_CaseLoader.add_constructor("!repeat", _repeat)
INVALID = yaml.load(
    (ROOT / "tests" / "data" / "invalid-broadcasts.yaml").read_text(), Loader=_CaseLoader
)


def _manifest(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": broadcasts.API_VERSION,
            "kind": broadcasts.KIND,
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _valid_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "botRef": {"name": "demo-bot"},
        "content": {"text": "<b>hello</b>"},
        "audience": {"subscribers": {}},
    }
    spec.update(overrides)
    return spec


def _get(kubectl: Any, name: str) -> dict[str, Any]:
    result = kubectl("get", "broadcast", name, "-o", "json")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _create(kubectl: Any, name: str = "hello", **overrides: Any) -> dict[str, Any]:
    kubectl("create", "-f", "-", input=_manifest(name, _valid_spec(**overrides)))
    return _get(kubectl, name)


def _words(text: str) -> str:
    # kubectl wraps explain output at 80 columns; compare text, not line breaks.
    return " ".join(text.split())


# --- every example applies, and the server's defaults are the model's ----------------------


def test_at_least_one_example_per_documented_file() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_applies_with_the_models_defaults(kubectl: Any, path: Path) -> None:
    kubectl("apply", "-f", str(ROOT / "examples" / "bot-secret.yaml"))
    kubectl("apply", "-f", str(path))
    manifest = yaml.safe_load(path.read_text())
    stored = _get(kubectl, manifest["metadata"]["name"])
    expected = BroadcastSpec.model_validate(manifest["spec"])
    assert stored["spec"] == expected.model_dump(mode="json", exclude_none=True)
    assert Broadcast.model_validate(stored).spec == expected


# --- invalid manifests are refused with the contract's words ------------------------------


@pytest.mark.parametrize("case", INVALID, ids=[case["id"] for case in INVALID])
def test_invalid_manifest_is_rejected(kubectl: Any, case: dict[str, Any]) -> None:
    result = kubectl("apply", "-f", "-", input=_manifest(case["id"], case["spec"]), check=False)
    assert result.returncode != 0, result.stdout
    expected: str = case.get("server") or case["message"]
    assert expected in result.stderr
    listed = kubectl("get", "broadcasts", "-o", "name")
    assert listed.stdout.strip() == ""


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 15


def test_all_rule_violations_are_reported_at_once(kubectl: Any) -> None:
    spec = _valid_spec(
        content={"media": {"type": "photo"}, "copyFrom": {"chatId": 1, "messageId": 1}},
        audience={},
        rate={"messagesPerSecond": 100},
    )
    result = kubectl("apply", "-f", "-", input=_manifest("many", spec), check=False)
    assert result.returncode != 0
    for message in (
        "spec.content: Invalid value: copyFrom sends an existing message as it is",
        "spec.content.media: Invalid value: media needs exactly one of url or fileId",
        "spec.audience: Invalid value: audience needs at least one selector",
        "spec.rate.messagesPerSecond: Invalid value: messagesPerSecond above 30",
    ):
        assert message in result.stderr


# --- immutability ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"spec": {"content": {"text": "something else"}}},
            "spec.content: Invalid value: content is immutable once the Broadcast exists; "
            "create a new Broadcast instead",
        ),
        (
            {"spec": {"content": {"disableNotification": True}}},
            "content is immutable once the Broadcast exists",
        ),
        (
            {"spec": {"audience": {"chatIds": [111]}}},
            "spec.audience: Invalid value: audience is immutable once the Broadcast exists; "
            "create a new Broadcast instead",
        ),
        (
            {"spec": {"audience": {"subscribers": {"languages": ["en"]}}}},
            "audience is immutable once the Broadcast exists",
        ),
        (
            {"spec": {"botRef": {"name": "other-bot"}}},
            "spec.botRef: Invalid value: botRef is immutable once the Broadcast exists",
        ),
        (
            {"spec": {"delivery": "atLeastOnce"}},
            "spec.delivery: Invalid value: delivery is immutable once the Broadcast exists; "
            "create a new Broadcast instead",
        ),
        (
            {"spec": {"dryRun": True}},
            "spec.dryRun: Invalid value: dryRun can only be turned off",
        ),
    ],
    ids=[
        "content-text",
        "content-flag",
        "audience-chat-ids",
        "audience-languages",
        "bot-ref",
        "delivery",
        "dry-run-turned-on",
    ],
)
def test_immutable_after_creation(kubectl: Any, patch: dict[str, Any], message: str) -> None:
    before = _create(kubectl)
    result = kubectl(
        "patch", "broadcast", "hello", "--type=merge", "-p", json.dumps(patch), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert _get(kubectl, "hello")["spec"] == before["spec"]


def test_pause_rate_and_schedule_stay_mutable(kubectl: Any) -> None:
    _create(kubectl)
    patch = {
        "spec": {
            "paused": True,
            "rate": {"messagesPerSecond": 5},
            "schedule": {"startAt": "2026-12-01T09:00:00Z"},
        }
    }
    kubectl("patch", "broadcast", "hello", "--type=merge", "-p", json.dumps(patch))
    spec = BroadcastSpec.model_validate(_get(kubectl, "hello")["spec"])
    assert spec.paused is True
    assert spec.rate.messages_per_second == 5
    assert spec.schedule is not None
    assert spec.schedule.start_at is not None


def test_dry_run_turns_off_and_spread_changes_while_the_audience_stays(kubectl: Any) -> None:
    _create(kubectl, dryRun=True, rate={"spreadOver": "8h"})
    patch = {"spec": {"dryRun": False, "rate": {"spreadOver": "1h30m"}}}
    kubectl("patch", "broadcast", "hello", "--type=merge", "-p", json.dumps(patch))
    spec = BroadcastSpec.model_validate(_get(kubectl, "hello")["spec"])
    assert (spec.dry_run, spec.rate.spread_over) == (False, "1h30m")
    back = kubectl(
        "patch", "broadcast", "hello", "--type=merge", "-p", '{"spec":{"dryRun":true}}', check=False
    )
    assert back.returncode != 0
    assert "dryRun can only be turned off" in back.stderr


def test_from_broadcast_is_a_selector(kubectl: Any) -> None:
    audience = {"fromBroadcast": {"name": "last-week", "states": ["failed", "uncertain"]}}
    created = _create(kubectl, audience=audience)
    assert created["spec"]["audience"] == audience


def test_unchanged_content_in_a_patch_is_accepted(kubectl: Any) -> None:
    # Re-applying the same manifest (GitOps sync) must not trip the transition rules.
    created = _create(kubectl)
    again = {"spec": {"content": created["spec"]["content"], "paused": True}}
    kubectl("patch", "broadcast", "hello", "--type=merge", "-p", json.dumps(again))
    assert _get(kubectl, "hello")["spec"]["paused"] is True


# --- status subresource ----------------------------------------------------------------------

STATUS = {
    "phase": "Sending",
    "total": 10,
    "delivered": 4,
    "failed": 1,
    "blocked": 2,
    "pending": 3,
    "progress": "70%",
    "observedRate": 24.5,
    "startedAt": "2026-12-01T09:00:00Z",
    "eta": "2026-12-01T09:00:30Z",
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "Sending",
            "message": "7 of 10 recipients done",
            "lastTransitionTime": "2026-12-01T09:00:00Z",
            "observedGeneration": 1,
        }
    ],
}


def _patch_status(kubectl: Any, body: dict[str, Any], *, check: bool = True) -> Any:
    return kubectl(
        "patch",
        "broadcast",
        "hello",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(body),
        check=check,
    )


def test_status_writes_do_not_change_spec(kubectl: Any) -> None:
    before = _create(kubectl)
    _patch_status(kubectl, {"spec": {"paused": True}, "status": STATUS})
    after = _get(kubectl, "hello")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    status = BroadcastStatus.model_validate(after["status"])
    assert status.delivered == 4
    assert status.uncertain == 0  # defaulted by the API server, as by the model
    assert after["status"] == status.model_dump(mode="json", exclude_none=True)


def test_spec_writes_do_not_change_status(kubectl: Any) -> None:
    _create(kubectl)
    _patch_status(kubectl, {"status": STATUS})
    kubectl(
        "patch",
        "broadcast",
        "hello",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"paused": True}, "status": {"phase": "Completed", "delivered": 99}}),
    )
    after = _get(kubectl, "hello")
    assert after["spec"]["paused"] is True
    assert after["metadata"]["generation"] == 2
    assert after["status"]["phase"] == "Sending"
    assert after["status"]["delivered"] == 4


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"phase": "Running"}, 'Unsupported value: "Running"'),
        (
            {"progress": "140%"},
            'status.progress: Invalid value: "140%": progress in body should match',
        ),
        ({"delivered": -1}, "should be greater than or equal to 0"),
        (
            {"conditions": [{**STATUS["conditions"][0]}, {**STATUS["conditions"][0]}]},  # type: ignore[index]
            "Duplicate value",
        ),
        (
            {"conditions": [{**STATUS["conditions"][0], "reason": "not camel case"}]},  # type: ignore[index]
            "status.conditions[0].reason: Invalid value",
        ),
    ],
    ids=["unknown-phase", "progress-over-100", "negative-counter", "duplicate-condition", "reason"],
)
def test_invalid_status_is_rejected(kubectl: Any, status: dict[str, Any], message: str) -> None:
    _create(kubectl)
    result = _patch_status(kubectl, {"status": status}, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_kubectl_wait_for_complete(kubectl: Any) -> None:
    _create(kubectl)
    complete = {
        "type": "Complete",
        "status": "True",
        "reason": "AllRecipientsTerminal",
        "message": "",
        "lastTransitionTime": "2026-12-01T10:00:00Z",
        "observedGeneration": 1,
    }
    _patch_status(kubectl, {"status": {"phase": "Completed", "conditions": [complete]}})
    kubectl("wait", "--for=condition=Complete", "broadcast/hello", "--timeout=10s")


# --- kubectl experience ----------------------------------------------------------------------


def _explain(kubectl: Any, field: str) -> str:
    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    deadline = time.monotonic() + 30
    while True:
        result = kubectl("explain", field, check=False)
        if result.returncode == 0:
            return str(result.stdout)
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.5)


def test_kubectl_explain_teaches_the_rate(kubectl: Any) -> None:
    output = _explain(kubectl, "broadcast.spec.rate")
    text = _words(output)
    assert _words(BroadcastSpec.model_fields["rate"].description or "") in text
    for name, field in broadcasts.Rate.model_fields.items():
        assert field.alias is not None
        assert field.alias in text, name
        assert _words(field.description or "") in text, name
    assert "messagesPerSecond <integer>" in _words(output.replace("\t", " "))


def test_kubectl_explain_describes_the_caption_rule(kubectl: Any) -> None:
    text = _words(_explain(kubectl, "bc.spec.content"))
    assert _words(Content.model_fields["text"].description or "") in text
    assert "When media or album is set this is the caption" in text


def _table(output: str) -> tuple[list[str], dict[str, list[str]]]:
    header, *rows = output.strip().splitlines()
    return header.split(), {row.split()[0]: row.split() for row in rows}


def test_printer_columns_and_short_name(kubectl: Any) -> None:
    _create(kubectl)
    _patch_status(kubectl, {"status": STATUS})
    header, rows = _table(kubectl("get", "bc").stdout)
    assert header == ["NAME", "PHASE", "PROGRESS", "DELIVERED", "FAILED", "AGE"]
    assert rows["hello"][:5] == ["hello", "Sending", "70%", "4", "1"]

    header, rows = _table(kubectl("get", "bc", "-o", "wide").stdout)
    for column in ("TOTAL", "BLOCKED", "UNCERTAIN", "RATE", "ETA", "PAUSED", "BOT"):
        assert column in header
    values = dict(zip(header, rows["hello"], strict=False))
    assert values["TOTAL"] == "10"
    assert values["BLOCKED"] == "2"
    assert values["RATE"] == "24.5"
    assert values["ETA"] == "2026-12-01T09:00:30Z"
    assert values["PAUSED"] == "false"
    assert values["BOT"] == "demo-bot"


def test_names_and_category(kubectl: Any) -> None:
    _create(kubectl)
    for resource in ("bc", "broadcast", "broadcasts", "broadcasts.herald.dev", "herald"):
        assert "hello" in kubectl("get", resource, "-o", "name").stdout, resource


def test_field_selectors(kubectl: Any) -> None:
    _create(kubectl, "running")
    _create(kubectl, "held", paused=True)
    paused = kubectl("get", "bc", "--field-selector", "spec.paused=true", "-o", "name")
    assert paused.stdout.split() == ["broadcast.herald.dev/held"]
    by_bot = kubectl("get", "bc", "--field-selector", "spec.botRef.name=demo-bot", "-o", "name")
    assert len(by_bot.stdout.split()) == 2
