"""Too long for Telegram, measured as Telegram measures: after the markup is parsed."""

from __future__ import annotations

from typing import Any

import pytest

from herald.core.contents import Content
from herald.core.envelopes import Recipient
from herald.telegram.lengths import too_long
from herald.telegram.rendering import Rendered, render

UID = "0b6f3a52-8c3e-4d0e-9a57-1f2d3c4b5a69"


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        pytest.param("sendMessage", {"text": "x" * 4096}, False, id="text-at-the-limit"),
        pytest.param("sendMessage", {"text": "x" * 4097}, True, id="text-over"),
        pytest.param(
            "sendMessage",
            {"text": "&lt;" * 4096, "parse_mode": "HTML"},
            False,
            id="html-entities-count-once",
        ),
        pytest.param(
            "sendMessage",
            {"text": "\\." * 4096, "parse_mode": "MarkdownV2"},
            False,
            id="markdown-escapes-not-counted",
        ),
        pytest.param(
            "sendMessage",
            {"text": "<b>" + "x" * 4097, "parse_mode": "HTML"},
            False,
            id="bad-markup-is-telegram's-to-refuse",
        ),
        pytest.param("sendPhoto", {"photo": "id", "caption": "y" * 1025}, True, id="caption-over"),
        pytest.param(
            "sendMediaGroup",
            {"media": [{"type": "photo", "media": "id", "caption": "y" * 1025}]},
            True,
            id="album-caption-over",
        ),
        pytest.param("copyMessage", {"from_chat_id": 1, "message_id": 2}, False, id="copy"),
    ],
)
def test_too_long(method: str, params: dict[str, Any], expected: bool) -> None:
    assert too_long(Rendered(method, {"chat_id": 1, **params})) is expected


def test_a_long_name_makes_one_recipients_message_too_long() -> None:
    content = Content.model_validate({"text": "<b>Hi</b> {first_name}! " + "x" * 4060})
    short = Recipient(chat_id=1, first_name="Ann")
    long = Recipient(chat_id=2, first_name="A" * 64)
    sent = [
        render(content, r, broadcast_uid=UID, allow_paid_broadcast=False) for r in (short, long)
    ]
    assert [too_long(rendered) for rendered in sent] == [False, True]
