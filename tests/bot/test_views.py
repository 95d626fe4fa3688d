"""Pure logic of the bot: progress, formatting, callback data, manifests, translations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from herald.bot.callbacks import (
    CALLBACK_DATA_MAX_BYTES,
    BroadcastAction,
    BroadcastButton,
    BroadcastRef,
    DialogButton,
    DialogStep,
    parse_broadcast_button,
    parse_dialog_button,
)
from herald.bot.manifests import ForwardedPost, broadcast_name, manifest, new_broadcast
from herald.bot.settings import BotSettings
from herald.bot.translations import LOCALES_DIR, Translations
from herald.bot.views import (
    format_duration,
    is_terminal,
    list_text,
    progress_bar,
    report_text,
    status_keyboard,
    status_text,
)
from herald.core.broadcasts import Broadcast, BroadcastSpec
from herald.core.envelopes import CompletionRecord
from herald.core.progress import Progress

TRANSLATIONS = Translations()
EN = TRANSLATIONS.for_language("en")
RU = TRANSLATIONS.for_language("ru")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _broadcast(name: str = "sale", namespace: str = "ns", **status: object) -> Broadcast:
    return Broadcast.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "botRef": {"name": "bot"},
                "content": {"text": "hi"},
                "audience": {"subscribers": {}},
                "rate": {"messagesPerSecond": 20},
            },
            "status": status or None,
        }
    )


@pytest.mark.parametrize(
    ("progress", "bar", "pct"),
    [
        pytest.param(Progress(counted=False), "░░░░░░░░░░", "0%", id="not-counted-yet"),
        pytest.param(Progress(done=0, total=0), "▓▓▓▓▓▓▓▓▓▓", "100%", id="empty-audience-is-done"),
        pytest.param(Progress(done=0, total=10), "░░░░░░░░░░", "0%", id="nothing-done"),
        pytest.param(Progress(done=5, total=10), "▓▓▓▓▓░░░░░", "50%", id="half"),
        pytest.param(Progress(done=999, total=1000), "▓▓▓▓▓▓▓▓▓░", "99%", id="almost-is-not-done"),
    ],
)
def test_progress_bar_and_percent(progress: Progress, bar: str, pct: str) -> None:
    assert (progress_bar(progress), str(progress)) == (bar, pct)


def test_progress_bar_needs_a_width() -> None:
    with pytest.raises(ValueError, match="at least one cell"):
        progress_bar(Progress(done=1, total=1), width=0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.9, "45s"), (185, "3m 05s"), (7620, "2h 07m"), (97200, "1d 03h"), (-5, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_broadcast_button_round_trip() -> None:
    ref = BroadcastRef(namespace="ns", name="sale")
    for action in BroadcastAction:
        data = BroadcastButton(action=action, ref=ref).pack(default_namespace="ns")
        assert data is not None
        assert parse_broadcast_button(data, default_namespace="ns") == BroadcastButton(
            action=action, ref=ref
        )
    other = BroadcastButton(action=BroadcastAction.PAUSE, ref=BroadcastRef(namespace="o", name="x"))
    assert other.pack(default_namespace="ns") == "b:p:o/x"


def test_broadcast_button_too_long_packs_to_none() -> None:
    ref = BroadcastRef(namespace="ns", name="a" * CALLBACK_DATA_MAX_BYTES)
    assert (
        BroadcastButton(action=BroadcastAction.PAUSE, ref=ref).pack(default_namespace="ns") is None
    )


@pytest.mark.parametrize(
    "data",
    ["", "b", "b:p", "b:p:", "b:z:sale", "b:p:Sale", "b:p:../x", "x:p:sale", "n:a:all"],
)
def test_broadcast_button_rejects_foreign_data(data: str) -> None:
    assert parse_broadcast_button(data, default_namespace="ns") is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("n:a:all", DialogButton(step=DialogStep.AUDIENCE, value="all")),
        ("n:a:pt-br", DialogButton(step=DialogStep.AUDIENCE, value="pt-br")),
        ("n:r:25", DialogButton(step=DialogStep.RATE, value="25")),
        ("n:c:yes", DialogButton(step=DialogStep.CONFIRM, value="yes")),
        ("n:a:ALL", None),
        ("n:r:0", None),
        ("n:r:1001", None),
        ("n:r:-1", None),
        ("n:c:maybe", None),
        ("n:x:1", None),
        ("b:p:sale", None),
    ],
)
def test_dialog_button_parsing(data: str, expected: DialogButton | None) -> None:
    parsed = parse_dialog_button(data)
    assert parsed == expected
    if parsed is not None:
        assert parsed.pack() == data


def test_dialog_button_values() -> None:
    assert DialogButton(step=DialogStep.RATE, value="10").rate == 10
    assert DialogButton(step=DialogStep.AUDIENCE, value="en").rate is None
    with pytest.raises(ValueError, match="not a choice of the AUDIENCE step"):
        DialogButton(step=DialogStep.AUDIENCE, value="10")
    assert DialogButton(step=DialogStep.CONFIRM, value="yes").confirmed
    assert not DialogButton(step=DialogStep.CONFIRM, value="no").confirmed


def test_refs_as_admins_type_them() -> None:
    assert BroadcastRef.parse(" sale ", default_namespace="ns") == BroadcastRef(
        namespace="ns", name="sale"
    )
    assert BroadcastRef.parse("other/sale", default_namespace="ns") == BroadcastRef(
        namespace="other", name="sale"
    )
    for bad in ("", "Sale", "a/b/c", "-x", "x/"):
        assert BroadcastRef.parse(bad, default_namespace="ns") is None


def test_new_broadcast_copies_the_admins_message() -> None:
    post = ForwardedPost(chat_id=1001, message_id=10_005, admin_id=1001)
    broadcast = new_broadcast(
        post, namespace="ns", bot_ref="herald-bot", audience="ru", messages_per_second=10
    )
    body = manifest(broadcast)
    assert body["metadata"]["name"] == broadcast_name(post) == "post-1001-10005"
    assert body["spec"]["content"]["copyFrom"] == {"chatId": 1001, "messageId": 10_005}
    assert body["spec"]["audience"] == {"subscribers": {"languages": ["ru"]}}
    assert body["spec"]["botRef"] == {"name": "herald-bot", "key": "token"}
    assert "status" not in body
    # What goes to the API server is valid by the shared contract.
    assert BroadcastSpec.model_validate(body["spec"]).rate.messages_per_second == 10
    everyone = new_broadcast(
        post, namespace="ns", bot_ref="s", audience="all", messages_per_second=25
    )
    assert manifest(everyone)["spec"]["audience"] == {"subscribers": {}}


def test_new_broadcast_refuses_what_the_api_server_would() -> None:
    post = ForwardedPost(chat_id=1, message_id=1, admin_id=1)
    with pytest.raises(ValueError, match="allowPaidBroadcast"):
        new_broadcast(post, namespace="ns", bot_ref="s", audience="all", messages_per_second=50)


def test_translations_fall_back_to_english() -> None:
    assert TRANSLATIONS.for_language("ru-RU").locale == "ru"
    assert TRANSLATIONS.for_language("RU").locale == "ru"
    assert TRANSLATIONS.for_language("de").locale == "en"
    assert TRANSLATIONS.for_language(None).locale == "en"
    assert set(TRANSLATIONS.locales) >= {"en", "ru"}
    assert RU("paused", name="x").startswith("Рассылка x")


def test_every_english_message_has_a_russian_one() -> None:
    def keys(locale: str) -> set[str]:
        lines = (LOCALES_DIR / locale / "bot.ftl").read_text(encoding="utf-8").splitlines()
        return {line.split(" =")[0] for line in lines if line and line[0].isalpha()}

    assert keys("en") == keys("ru")


def test_status_text_shows_counts_rate_eta_and_conditions() -> None:
    broadcast = _broadcast(
        phase="Sending",
        total=200,
        delivered=90,
        blocked=6,
        failed=4,
        pending=100,
        observedRate=9.5,
        eta=(NOW + timedelta(minutes=3, seconds=5)).isoformat(),
        conditions=[
            {
                "type": "Reconciling",
                "status": "True",
                "reason": "Sending",
                "message": "",
                "lastTransitionTime": NOW.isoformat(),
            }
        ],
    )
    text = status_text(broadcast, texts=EN, default_namespace="ns", now=NOW)
    assert text.splitlines() == [
        "Broadcast sale: sending",
        "▓▓▓▓▓░░░░░ 50% (100 of 200)",
        "Delivered 90 · blocked 6 · failed 4 · uncertain 0 · pending 100",
        "Rate: 9.5 msg/s of 20 allowed",
        "ETA: 3m 05s",
        "Reconciling: True (Sending)",
    ]
    assert status_text(broadcast, texts=EN, default_namespace="other", now=NOW).startswith(
        "Broadcast ns/sale"
    )


@pytest.mark.parametrize(
    ("texts", "recalled", "corrected"),
    [
        (
            EN,
            "Recalled: 4 of 10 delivered messages deleted",
            "Corrected: 6 of 10 delivered messages edited",
        ),
        (
            RU,
            "Отозвано: удалено 4 из 10 доставленных сообщений",
            "Исправлено: отредактировано 6 из 10 доставленных сообщений",
        ),
    ],
)
def test_status_text_says_how_far_a_recall_and_a_correction_are(
    texts: Any, recalled: str, corrected: str
) -> None:
    plain = _broadcast(total=10, delivered=10, recalled=4, corrected=6)
    amended = plain.model_copy(
        update={
            "spec": plain.spec.model_validate(
                {
                    **plain.spec.model_dump(by_alias=True, exclude_none=True),
                    "recall": True,
                    "correction": {"text": "hi!"},
                }
            )
        }
    )
    lines = status_text(amended, texts=texts, default_namespace="ns", now=NOW).splitlines()
    assert recalled in lines and corrected in lines
    shown = status_text(plain, texts=texts, default_namespace="ns", now=NOW)
    assert recalled not in shown and corrected not in shown


def test_status_keyboard_follows_the_state() -> None:
    def data(broadcast: Broadcast) -> list[str]:
        keyboard = status_keyboard(broadcast, texts=EN, default_namespace="ns")
        return [button.data for row in keyboard for button in row]

    assert data(_broadcast(phase="Sending")) == ["b:p:sale", "b:f:sale", "b:c:sale"]
    paused = _broadcast().model_copy(
        update={"spec": _broadcast().spec.model_copy(update={"paused": True})}
    )
    assert data(paused) == ["b:r:sale", "b:f:sale", "b:c:sale"]
    complete = _broadcast(phase="Completed", conditions=[_holds("Complete")])
    assert data(complete) == ["b:f:sale", "b:c:sale"]
    assert data(_broadcast(name="x" * 70)) == []


def _holds(type_: str, reason: str = "Complete") -> dict[str, str]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": "",
        "lastTransitionTime": NOW.isoformat(),
    }


@pytest.mark.parametrize(
    ("status", "over"),
    [
        pytest.param({}, False, id="no-status"),
        pytest.param({"phase": "Sending"}, False, id="sending"),
        pytest.param({"conditions": [_holds("Complete")]}, True, id="complete"),
        pytest.param(
            # A missing Secret: the Broadcast goes on once it is created.
            {"phase": "Stalled", "conditions": [_holds("Stalled", "BotSecretNotFound")]},
            False,
            id="stalled-will-resume",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "pending": 3,
                "conditions": [_holds("Stalled", "DeadlineExceeded"), _holds("Failed")],
            },
            False,
            id="failed-while-its-rows-are-closed",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "conditions": [_holds("Stalled", "ContentRejected"), _holds("Failed")],
            },
            True,
            id="failed-for-good",
        ),
        pytest.param({"phase": "Completed"}, False, id="a-phase-alone-says-nothing"),
    ],
)
def test_a_broadcast_is_over_by_its_conditions(status: dict[str, Any], over: bool) -> None:
    assert is_terminal(_broadcast(**status)) is over


def test_list_text() -> None:
    assert list_text([], texts=EN, default_namespace="ns").startswith("No broadcasts")
    text = list_text(
        [_broadcast(phase="Paused", total=4, delivered=1)], texts=RU, default_namespace="ns"
    )
    assert text == "Рассылки:\nsale · на паузе ▓▓░░░░░░░░ 25%"


def test_report_text_in_both_languages() -> None:
    record = CompletionRecord(
        uid="u",
        namespace="ns",
        name="sale",
        outcome="Failed",
        total=10,
        delivered=7,
        blocked=1,
        failed=2,
        uncertain=0,
    )
    assert report_text(record, texts=EN, default_namespace="ns").splitlines() == [
        "Broadcast sale finished: Failed.",
        "Delivered 7 of 10 · blocked 1 · failed 2 · uncertain 0",
        "Duration: –",
    ]
    assert "Доставлено 7 из 10" in report_text(record, texts=RU, default_namespace="ns")


def test_report_text_shows_the_clicks_by_callback_id() -> None:
    record = CompletionRecord(
        uid="u",
        namespace="ns",
        name="poll",
        outcome="Complete",
        total=10,
        delivered=10,
        blocked=0,
        failed=0,
        uncertain=0,
        clicks={"yes": 4, "no": 2},
    )
    assert report_text(record, texts=EN, default_namespace="ns").splitlines()[-1] == (
        "Clicks so far: no 2 · yes 4"
    )
    russian = report_text(record, texts=RU, default_namespace="ns")
    assert russian.splitlines()[-1] == "Нажатия на кнопки к этому моменту: no 2 · yes 4"


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("HERALD_BOT_ADMINS", "[1, 2]")
    monkeypatch.setenv("HERALD_BOT_NAMESPACE", "marketing")
    settings = BotSettings()
    assert settings.admins == frozenset({1, 2})
    assert settings.listed_namespaces == ("marketing",)
    assert "1:abc" not in repr(settings)
    monkeypatch.setenv("HERALD_BOT_NAMESPACES", '["a", "b"]')
    assert BotSettings().listed_namespaces == ("a", "b")
