"""Content + recipient -> one Bot API call."""

from __future__ import annotations

from typing import Any

import pytest

from herald.core.contents import Content, ParseMode
from herald.core.envelopes import Recipient
from herald.telegram.rendering import (
    CALLBACK_DATA_MAX_BYTES,
    Press,
    callback_data,
    escape,
    parse_callback_data,
    render,
    substitute,
)

UID = "0b6f3a52-8c3e-4d0e-9a57-1f2d3c4b5a69"

BOB = Recipient(
    chat_id=42, language_code="pt-BR", first_name="<Bob>", last_name="a_b", username="bob_1"
)


def content(**fields: Any) -> Content:
    return Content.model_validate(fields)


CASES = [
    (
        "text-html",
        content(text="<b>Hi</b>"),
        Recipient(1),
        "sendMessage",
        {"chat_id": 1, "text": "<b>Hi</b>", "parse_mode": "HTML"},
    ),
    (
        "text-plain-has-no-parse-mode",
        content(text="Hi", parseMode="None"),
        Recipient(1),
        "sendMessage",
        {"chat_id": 1, "text": "Hi"},
    ),
    (
        "photo-by-url-caption",
        content(text="Look", media={"type": "photo", "url": "https://x.example/p.jpg"}),
        Recipient(1),
        "sendPhoto",
        {"chat_id": 1, "photo": "https://x.example/p.jpg", "caption": "Look", "parse_mode": "HTML"},
    ),
    (
        "video-by-file-id",
        content(media={"type": "video", "fileId": "BAADF"}),
        Recipient(1),
        "sendVideo",
        {"chat_id": 1, "video": "BAADF"},
    ),
    (
        "document",
        content(media={"type": "document", "fileId": "D"}),
        Recipient(1),
        "sendDocument",
        {"chat_id": 1, "document": "D"},
    ),
    (
        "animation",
        content(media={"type": "animation", "fileId": "A"}),
        Recipient(1),
        "sendAnimation",
        {"chat_id": 1, "animation": "A"},
    ),
    (
        "audio-caption",
        content(text="Ep. 1", media={"type": "audio", "url": "https://x.example/1.mp3"}),
        Recipient(1),
        "sendAudio",
        {
            "chat_id": 1,
            "audio": "https://x.example/1.mp3",
            "caption": "Ep. 1",
            "parse_mode": "HTML",
        },
    ),
    (
        "voice",
        content(media={"type": "voice", "fileId": "V"}),
        Recipient(1),
        "sendVoice",
        {"chat_id": 1, "voice": "V"},
    ),
    (
        "album-caption-on-the-first-item",
        content(
            text="Two",
            parseMode="MarkdownV2",
            album=[
                {"type": "photo", "url": "https://x.example/1.jpg"},
                {"type": "video", "fileId": "V"},
            ],
        ),
        Recipient(1),
        "sendMediaGroup",
        {
            "chat_id": 1,
            "media": [
                {
                    "type": "photo",
                    "media": "https://x.example/1.jpg",
                    "caption": "Two",
                    "parse_mode": "MarkdownV2",
                },
                {"type": "video", "media": "V"},
            ],
        },
    ),
    (
        "album-caption-above-on-every-item",
        content(
            text="Two",
            showCaptionAboveMedia=True,
            album=[{"type": "photo", "fileId": "P"}, {"type": "photo", "fileId": "Q"}],
        ),
        Recipient(1),
        "sendMediaGroup",
        {
            "chat_id": 1,
            "media": [
                {
                    "type": "photo",
                    "media": "P",
                    "caption": "Two",
                    "parse_mode": "HTML",
                    "show_caption_above_media": True,
                },
                {"type": "photo", "media": "Q", "show_caption_above_media": True},
            ],
        },
    ),
    (
        "album-of-documents-without-caption",
        content(album=[{"type": "document", "fileId": "A"}, {"type": "document", "fileId": "B"}]),
        Recipient(1),
        "sendMediaGroup",
        {
            "chat_id": 1,
            "media": [{"type": "document", "media": "A"}, {"type": "document", "media": "B"}],
        },
    ),
    (
        "caption-above-a-photo",
        content(text="Up", showCaptionAboveMedia=True, media={"type": "photo", "fileId": "P"}),
        Recipient(1),
        "sendPhoto",
        {
            "chat_id": 1,
            "photo": "P",
            "caption": "Up",
            "parse_mode": "HTML",
            "show_caption_above_media": True,
        },
    ),
    (
        "link-preview",
        content(
            text="x",
            linkPreview={
                "url": "https://e.example",
                "preferSmallMedia": True,
                "showAboveText": True,
            },
        ),
        Recipient(1),
        "sendMessage",
        {
            "chat_id": 1,
            "text": "x",
            "parse_mode": "HTML",
            "link_preview_options": {
                "url": "https://e.example",
                "prefer_small_media": True,
                "show_above_text": True,
            },
        },
    ),
    (
        "link-preview-disabled",
        content(text="x", parseMode="None", linkPreview={"disabled": True}),
        Recipient(1),
        "sendMessage",
        {"chat_id": 1, "text": "x", "link_preview_options": {"is_disabled": True}},
    ),
    (
        "message-effect-in-a-private-chat",
        content(text="x", parseMode="None", messageEffectId="5104841245755180586"),
        Recipient(1),
        "sendMessage",
        {"chat_id": 1, "text": "x", "message_effect_id": "5104841245755180586"},
    ),
    (
        "no-message-effect-in-a-group",
        content(text="x", parseMode="None", messageEffectId="5104841245755180586"),
        Recipient(-100123),
        "sendMessage",
        {"chat_id": -100123, "text": "x"},
    ),
    (
        "message-effect-on-an-album",
        content(
            messageEffectId="5046509860389126442",
            album=[{"type": "audio", "fileId": "A"}, {"type": "audio", "fileId": "B"}],
        ),
        Recipient(7),
        "sendMediaGroup",
        {
            "chat_id": 7,
            "message_effect_id": "5046509860389126442",
            "media": [{"type": "audio", "media": "A"}, {"type": "audio", "media": "B"}],
        },
    ),
    (
        "copy-from",
        content(copyFrom={"chatId": -100123, "messageId": 42}),
        Recipient(1),
        "copyMessage",
        {"chat_id": 1, "from_chat_id": -100123, "message_id": 42},
    ),
    (
        "buttons-and-flags",
        content(
            text="x",
            buttons=[[{"text": "Open", "url": "https://shop.example"}]],
            disableNotification=True,
            protectContent=True,
        ),
        Recipient(1),
        "sendMessage",
        {
            "chat_id": 1,
            "text": "x",
            "parse_mode": "HTML",
            "disable_notification": True,
            "protect_content": True,
            "reply_markup": {
                "inline_keyboard": [[{"text": "Open", "url": "https://shop.example"}]]
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("given", "recipient", "method", "params"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_render(given: Content, recipient: Recipient, method: str, params: dict[str, Any]) -> None:
    rendered = render(given, recipient, broadcast_uid=UID, allow_paid_broadcast=False)
    assert (rendered.method, rendered.params) == (method, params)


def test_paid_broadcast_flag_is_sent() -> None:
    rendered = render(content(text="x"), Recipient(1), broadcast_uid=UID, allow_paid_broadcast=True)
    assert rendered.params["allow_paid_broadcast"] is True


LOCALIZED = content(
    text="Hello",
    buttons=[[{"text": "Open", "url": "https://e.example"}]],
    localized={
        "pt": {"text": "Olá"},
        "ru": {"text": "Привет", "buttons": [[{"text": "Открыть", "url": "https://e.example"}]]},
    },
)


@pytest.mark.parametrize(
    ("language", "text", "button", "variant"),
    [
        ("pt-br", "Olá", "Open", "pt"),  # primary language, default buttons
        ("ru", "Привет", "Открыть", "ru"),  # variant's own buttons
        ("de", "Hello", "Open", ""),  # fallback to the default
        (None, "Hello", "Open", ""),
    ],
    ids=["region-falls-back-to-language", "exact", "unknown-language", "no-language"],
)
def test_localized_variant(language: str | None, text: str, button: str, variant: str) -> None:
    rendered = render(
        LOCALIZED, Recipient(1, language), broadcast_uid=UID, allow_paid_broadcast=False
    )
    assert rendered.params["text"] == text
    assert rendered.params["reply_markup"]["inline_keyboard"][0][0]["text"] == button
    assert rendered.variant == variant


@pytest.mark.parametrize(
    ("mode", "template", "expected"),
    [
        (ParseMode.HTML, "<b>{first_name}</b> {last_name}", "<b>&lt;Bob&gt;</b> a_b"),
        (ParseMode.MARKDOWN_V2, "*{first_name}* {username}", r"*<Bob\>* bob\_1"),
        (ParseMode.NONE, "{full_name}!", "<Bob> a_b!"),
        (ParseMode.HTML, "{unknown} {first_name", "{unknown} {first_name"),
    ],
    ids=["html-escaped", "markdown-v2-escaped", "plain-untouched", "unknown-left-as-is"],
)
def test_placeholders(mode: ParseMode, template: str, expected: str) -> None:
    assert substitute(template, BOB, mode) == expected


def test_markdown_v2_escapes_every_reserved_character() -> None:
    reserved = "_*[]()~`>#+-=|{}.!\\"
    assert escape(reserved, ParseMode.MARKDOWN_V2) == "".join("\\" + c for c in reserved)


def test_missing_names_become_empty() -> None:
    assert substitute("Hi {first_name}{username}", Recipient(1), ParseMode.HTML) == "Hi "


def test_callback_buttons_carry_the_broadcast_and_the_button() -> None:
    given = content(
        text="Coming?",
        buttons=[
            [
                {"text": "Yes", "callback": "yes", "answer": "Thanks!", "tag": "voted-yes"},
                {"text": "No", "callback": "no"},
            ],
            [{"text": "Details", "url": "https://e.example"}],
        ],
    )
    rows = render(given, Recipient(1), broadcast_uid=UID, allow_paid_broadcast=False).params[
        "reply_markup"
    ]["inline_keyboard"]
    assert rows[1] == [{"text": "Details", "url": "https://e.example"}]
    assert [set(b) for b in rows[0]] == [{"text", "callback_data"}] * 2
    presses = [parse_callback_data(b["callback_data"]) for b in rows[0]]
    assert presses == [Press(UID, "yes"), Press(UID, "no")]


def test_the_longest_callback_id_fits_telegrams_callback_data() -> None:
    data = callback_data(UID, "x" * 32)
    assert len(data.encode()) <= CALLBACK_DATA_MAX_BYTES
    assert parse_callback_data(data) == Press(UID, "x" * 32)


@pytest.mark.parametrize(
    "data", ["", "yes", "h1:", "h1:abc", "h1:!!!:yes", "h2:" + "A" * 22 + ":yes", "h1:AAAA:"]
)
def test_data_herald_did_not_write_is_no_press(data: str) -> None:
    assert parse_callback_data(data) is None


def test_html_escapes_the_single_quote_as_a_numeric_entity() -> None:
    obrien = Recipient(1, first_name="O'Brien")
    assert substitute("<a href='x'>{first_name}</a>", obrien, ParseMode.HTML) == (
        "<a href='x'>O&#39;Brien</a>"
    )
