"""The Broadcast contract as pydantic models: examples, defaults, rules, helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from herald.core import audiences, broadcasts, contents, statuses
from herald.core.broadcasts import Broadcast, BroadcastSpec, Delivery
from herald.core.contents import Content, ContentKind, ParseMode
from herald.core.contracts import CelRule, Contract
from herald.core.statuses import BroadcastStatus, Condition, ConditionStatus, ConditionType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
# Some examples hold several documents (examples/transactional-app.yaml); Broadcasts one each.
BROADCAST_EXAMPLES = [
    p for p in EXAMPLES if [d["kind"] for d in yaml.safe_load_all(p.read_text())] == ["Broadcast"]
]


class _CaseLoader(yaml.SafeLoader):
    """Reads tests/data/invalid-broadcasts.yaml, where `!repeat [x, N]` builds long strings."""


def _repeat(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> str:
    text, times = loader.construct_sequence(node)
    return str(text) * int(times)


_CaseLoader.add_constructor("!repeat", _repeat)
INVALID = yaml.load(
    (ROOT / "tests" / "data" / "invalid-broadcasts.yaml").read_text(), Loader=_CaseLoader
)


def _minimal(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "botRef": {"name": "demo-bot"},
        "content": {"text": "hello"},
        "audience": {"subscribers": {}},
    }
    spec.update(overrides)
    return spec


def test_there_is_an_example_of_every_kind_of_content() -> None:
    kinds = {
        Broadcast.model_validate(yaml.safe_load(p.read_text())).spec.content.kind
        for p in BROADCAST_EXAMPLES
    }
    assert kinds == set(ContentKind)
    assert {p.name for p in BROADCAST_EXAMPLES} >= {
        "broadcast.yaml",
        "text.yaml",
        "media-buttons.yaml",
        "copy-from.yaml",
        "localized.yaml",
        "scheduled.yaml",
        "paused.yaml",
        "paid.yaml",
        "poll-callbacks.yaml",
        "album.yaml",
        "audio.yaml",
        "voice.yaml",
        "link-preview.yaml",
    }


@pytest.mark.parametrize("path", BROADCAST_EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_round_trips(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    broadcast = Broadcast.model_validate(manifest)
    assert broadcast.api_version == broadcasts.API_VERSION
    assert "namespace" not in manifest["metadata"], "examples are applied with -n"
    assert broadcast.spec.bot_ref.name == "demo-bot"
    wire = broadcast.model_dump(mode="json", exclude_none=True)
    assert Broadcast.model_validate(wire) == broadcast


def test_the_example_bot_and_its_secret_are_the_ones_the_broadcasts_name() -> None:
    secret = yaml.safe_load((ROOT / "examples" / "bot-secret.yaml").read_text())
    bot = yaml.safe_load((ROOT / "examples" / "bot.yaml").read_text())
    assert secret["kind"] == "Secret"
    assert bot["spec"]["tokenSecretRef"]["name"] == secret["metadata"]["name"]
    assert ":" in secret["stringData"]["token"]
    for path in BROADCAST_EXAMPLES:
        manifest = yaml.safe_load(path.read_text())
        assert manifest["spec"]["botRef"]["name"] == bot["metadata"]["name"], path.name


@pytest.mark.parametrize("case", INVALID, ids=[case["id"] for case in INVALID])
def test_invalid_spec_is_rejected_with_a_readable_message(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        BroadcastSpec.model_validate(case["spec"])
    expected: str = case.get("model") or case["message"]
    assert expected in str(caught.value)


def test_invalid_cases_have_unique_ids_and_an_expectation_for_both_sides() -> None:
    ids = [case["id"] for case in INVALID]
    assert len(ids) == len(set(ids))
    for case in INVALID:
        assert "message" in case or {"model", "server"} <= case.keys(), case["id"]


def test_every_cel_rule_is_exercised_by_an_invalid_case() -> None:
    bots = yaml.safe_load((ROOT / "tests" / "data" / "invalid-bots.yaml").read_text())
    messages = [case.get("message", "") for case in (*INVALID, *bots)]
    rules = [
        rule for model in _contract_models() for rule in model.cel_rules if not rule.is_transition
    ]
    for rule in rules:
        assert any(message and message in rule.message for message in messages), rule.message


def _contract_models() -> list[type[Contract]]:
    """Every model of the contract, whichever module of herald.core it lives in."""
    found: list[type[Contract]] = []
    pending = [Contract]
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def test_defaults_are_the_documented_ones() -> None:
    spec = BroadcastSpec.model_validate(_minimal())
    assert spec.bot_ref.key == "token"
    assert spec.content.parse_mode is ParseMode.HTML
    assert spec.content.disable_notification is False
    assert spec.content.protect_content is False
    assert spec.rate.messages_per_second == 25
    assert spec.rate.allow_paid_broadcast is False
    assert spec.rate.stars_budget is None
    assert spec.schedule is None
    assert spec.delivery is Delivery.AT_MOST_ONCE
    assert spec.paused is False


def test_wire_form_is_camel_case_and_python_names_are_accepted() -> None:
    spec = BroadcastSpec(
        bot_ref=broadcasts.BotRef(name="demo-bot"),
        content=Content(copy_from=contents.CopyFrom(chat_id=-100123, message_id=7)),
        audience=audiences.Audience(chat_ids=(1, 2)),
        rate=broadcasts.Rate(messages_per_second=500, allow_paid_broadcast=True),
    )
    wire = spec.model_dump(mode="json", exclude_none=True)
    assert wire["botRef"] == {"name": "demo-bot", "key": "token"}
    assert wire["content"]["copyFrom"] == {"chatId": -100123, "messageId": 7}
    assert wire["audience"] == {"chatIds": [1, 2]}
    assert wire["rate"] == {"messagesPerSecond": 500, "allowPaidBroadcast": True}
    assert BroadcastSpec.model_validate(wire) == spec


def test_models_are_immutable() -> None:
    spec = BroadcastSpec.model_validate(_minimal())
    with pytest.raises(ValidationError, match="frozen"):
        spec.paused = True  # type: ignore[misc]
    assert spec.model_copy(update={"paused": True}).paused is True


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"text": "hi"}, ContentKind.TEXT),
        ({"media": {"type": "photo", "url": "https://e.x/a.jpg"}}, ContentKind.MEDIA),
        ({"media": {"type": "photo", "fileId": "AgAC"}, "text": "caption"}, ContentKind.MEDIA),
        ({"copyFrom": {"chatId": -1001, "messageId": 1}}, ContentKind.COPY),
    ],
    ids=["text", "media", "media-with-caption", "copy"],
)
def test_content_kind(content: dict[str, Any], kind: ContentKind) -> None:
    assert Content.model_validate(content).kind is kind


def test_caption_may_be_up_to_1024_and_text_up_to_4096() -> None:
    media = {"type": "photo", "url": "https://e.x/a.jpg"}
    Content.model_validate({"media": media, "text": "a" * 1024})
    Content.model_validate({"text": "a" * 4096})
    Content.model_validate({"media": media, "text": "x", "localized": {"ru": {"text": "б" * 1024}}})


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("pt-br", "pt-br"),
        ("pt-pt", "pt"),
        ("PT-BR", "pt-br"),
        ("ru", "ru"),
        ("en", None),
        (None, None),
        ("", None),
    ],
    ids=["exact", "primary-language", "case-insensitive", "plain", "default", "unknown", "empty"],
)
def test_variant_for_language(language: str | None, expected: str | None) -> None:
    content = Content.model_validate(
        {
            "text": "default",
            "localized": {"ru": {"text": "ru"}, "pt": {"text": "pt"}, "pt-br": {"text": "pt-br"}},
        }
    )
    variant = content.variant_for(language)
    assert (variant.text if variant else None) == expected


def test_segment_view_is_an_unquoted_identifier() -> None:
    audience = audiences.Audience.model_validate({"segment": "unfinished-poll"})
    assert audience.segment_view == "herald_segment_unfinished_poll"
    assert audiences.Audience.model_validate({"chatIds": [1]}).segment_view is None


def test_schedule_times_are_time_zone_aware() -> None:
    schedule = broadcasts.Schedule.model_validate(
        {"startAt": "2026-12-01T09:00:00Z", "deadline": "2026-12-01T12:00:00+02:00"}
    )
    assert schedule.start_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert schedule.deadline is not None
    assert schedule.deadline.utcoffset() is not None
    with pytest.raises(ValidationError, match="RFC 3339"):
        broadcasts.Schedule.model_validate({"startAt": "2026-12-01 09:00:00Z"})
    with pytest.raises(ValidationError, match="timezone"):
        broadcasts.Schedule(start_at=datetime(2026, 12, 1, 9))  # noqa: DTZ001


def test_deadline_equal_to_start_is_rejected() -> None:
    with pytest.raises(ValidationError, match="deadline must be later than startAt"):
        broadcasts.Schedule.model_validate(
            {"startAt": "2026-12-01T09:00:00Z", "deadline": "2026-12-01T11:00:00+02:00"}
        )


def test_paid_rate_up_to_1000() -> None:
    rate = broadcasts.Rate.model_validate({"messagesPerSecond": 1000, "allowPaidBroadcast": True})
    assert rate.messages_per_second == 1000
    assert broadcasts.Rate.model_validate({"messagesPerSecond": 30}).messages_per_second == 30


def test_status_round_trips_and_finds_conditions() -> None:
    wire = {
        "phase": "Sending",
        "total": 10,
        "delivered": 4,
        "pending": 6,
        "progress": "40%",
        "observedRate": 24.5,
        "startedAt": "2026-12-01T09:00:00Z",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Reconciling",
                "status": "True",
                "reason": "Sending",
                "message": "4 of 10 sent",
                "lastTransitionTime": "2026-12-01T09:00:00Z",
                "observedGeneration": 3,
            }
        ],
    }
    status = BroadcastStatus.model_validate(wire)
    assert status.phase is statuses.Phase.SENDING
    condition = status.condition(ConditionType.RECONCILING)
    assert condition is not None
    assert condition.status is ConditionStatus.TRUE
    assert status.condition(ConditionType.COMPLETE) is None
    assert status.model_dump(mode="json", exclude_none=True) == {
        **wire,
        "failed": 0,
        "recalled": 0,
        "corrected": 0,
        "blocked": 0,
        "uncertain": 0,
        "totalClicks": 0,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("progress", "140%", "String should match pattern"),
        ("delivered", -1, "greater than or equal to 0"),
        ("phase", "Running", "Input should be 'Pending'"),
    ],
    ids=["progress-over-100", "negative-counter", "unknown-phase"],
)
def test_invalid_status_is_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BroadcastStatus.model_validate({field: value})


def test_condition_reason_is_camel_case_word() -> None:
    base = {
        "type": "Stalled",
        "status": "True",
        "message": "",
        "lastTransitionTime": "2026-12-01T09:00:00Z",
    }
    assert Condition.model_validate({**base, "reason": "BotSecretNotFound"}).reason
    with pytest.raises(ValidationError, match="String should match pattern"):
        Condition.model_validate({**base, "reason": "bot secret not found"})


def test_broadcast_envelope_reads_an_api_server_object() -> None:
    obj = {
        "apiVersion": "herald.dev/v1alpha1",
        "kind": "Broadcast",
        "metadata": {
            "name": "hello",
            "namespace": "demo",
            "uid": "0b6e4a4e-8c1b-4f57-9d3c-3f3f1f1f1f1f",
            "generation": 2,
            "resourceVersion": "123",
            "creationTimestamp": "2026-12-01T09:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": _minimal(),
    }
    broadcast = Broadcast.model_validate(obj)
    assert broadcast.metadata.generation == 2
    assert broadcast.metadata.resource_version == "123"
    assert broadcast.status is None
    with pytest.raises(ValidationError):
        Broadcast.model_validate({**obj, "apiVersion": "herald.dev/v1"})


def test_a_rule_without_python_predicate_must_be_a_transition_rule() -> None:
    assert CelRule(rule="self == oldSelf", message="immutable").is_transition
    with pytest.raises(ValueError, match="needs a Python predicate"):
        CelRule(rule="has(self.x)", message="x")
