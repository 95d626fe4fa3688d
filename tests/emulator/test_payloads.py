"""Each send is checked as Telegram's Bot API server checks it: keyboards, link previews,
albums, message effects, audio and voice; refused in Telegram's words, recorded when taken."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Message

from herald.emulator.clocks import ManualClock
from herald.emulator.emulating import EmulatorState
from herald.emulator.settings import EmulatorConfig, Limits

TOKEN = "123:abc"
PHOTO = {"type": "photo", "media": "https://a.example/1.jpg"}
VIDEO = {"type": "video", "media": "VIDEO-ID"}
DOCUMENT = {"type": "document", "media": "DOC-ID"}
AUDIO = {"type": "audio", "media": "AUDIO-ID"}


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    return EmulatorState(
        EmulatorConfig(limits=Limits(rate=0, paid_rate=0, per_chat_rate=0)), clock=clock
    )


def keyboard(*buttons: Any) -> dict[str, Any]:
    return {"inline_keyboard": [list(buttons)]}


BUTTON_ERROR = "Bad Request: can't parse inline keyboard button: "
REFUSALS = [
    # id, method, params (chat 1 unless given), Telegram's description
    (
        "markup-not-json",
        "sendMessage",
        {"text": "x", "reply_markup": "{inline"},
        "Bad Request: can't parse reply keyboard markup JSON object",
    ),
    (
        "markup-not-an-object",
        "sendMessage",
        {"text": "x", "reply_markup": [1]},
        "Bad Request: object expected as reply markup",
    ),
    (
        "keyboard-not-an-array",
        "sendMessage",
        {"text": "x", "reply_markup": {"inline_keyboard": {"a": 1}}},
        'Bad Request: field "inline_keyboard" must be of type Array',
    ),
    (
        "row-not-an-array",
        "sendMessage",
        {"text": "x", "reply_markup": {"inline_keyboard": [{"text": "a"}]}},
        'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of '
        "Arrays",
    ),
    (
        "button-not-an-object",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard("Open")},
        BUTTON_ERROR + "InlineKeyboardButton must be an Object",
    ),
    (
        "button-without-text",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard({"url": "https://e.example"})},
        BUTTON_ERROR + 'Can\'t find field "text"',
    ),
    (
        "button-text-not-a-string",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard({"text": 5, "url": "https://e.example"})},
        BUTTON_ERROR + 'Field "text" must be of type String',
    ),
    (
        "button-without-action",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard({"text": "a"})},
        BUTTON_ERROR + "Text buttons are unallowed in the inline keyboard",
    ),
    (
        "button-with-empty-callback-data",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard({"text": "a", "callback_data": ""})},
        BUTTON_ERROR + "Text buttons are unallowed in the inline keyboard",
    ),
    (
        "button-with-url-and-callback-data",
        "sendMessage",
        {
            "text": "x",
            "reply_markup": keyboard(
                {"text": "a", "url": "https://e.example", "callback_data": "d"}
            ),
        },
        BUTTON_ERROR + "a button takes one of url and callback_data, not both",
    ),
    (
        "callback-data-over-64-bytes",
        "sendMessage",
        {"text": "x", "reply_markup": keyboard({"text": "a", "callback_data": "é" * 33})},
        "Bad Request: BUTTON_DATA_INVALID",
    ),
    (
        "button-url-of-another-protocol",
        "sendPhoto",
        {"photo": "P", "reply_markup": keyboard({"text": "a", "url": "ftp://e.example"})},
        "Bad Request: inline keyboard button URL 'ftp://e.example' is invalid: "
        "Unsupported URL protocol",
    ),
    (
        "button-url-without-a-domain",
        "copyMessage",
        {
            "from_chat_id": -100,
            "message_id": 3,
            "reply_markup": keyboard({"text": "a", "url": "http://localhost:8080"}),
        },
        "Bad Request: inline keyboard button URL 'http://localhost:8080' is invalid: "
        "Wrong HTTP URL",
    ),
    (
        "link-preview-not-json",
        "sendMessage",
        {"text": "x", "link_preview_options": "{"},
        "Bad Request: can't parse link preview options JSON object",
    ),
    (
        "link-preview-flag-not-a-boolean",
        "sendMessage",
        {"text": "x", "link_preview_options": {"is_disabled": "yes"}},
        'Bad Request: field "is_disabled" must be of type Boolean',
    ),
    (
        "message-effect-in-a-group",
        "sendMessage",
        {"chat_id": -100123, "text": "x", "message_effect_id": "5104841245755180586"},
        "Bad Request: can't use message effects in the chat",
    ),
    (
        "message-effect-in-a-channel-album",
        "sendMediaGroup",
        {"chat_id": "@news", "media": [PHOTO, VIDEO], "message_effect_id": "5104841245755180586"},
        "Bad Request: can't use message effects in the chat",
    ),
    (
        "message-effect-not-a-number",
        "sendVoice",
        {"voice": "V", "message_effect_id": "fire"},
        "Bad Request: EFFECT_ID_INVALID",
    ),
    ("voice-missing", "sendVoice", {}, "Bad Request: there is no voice in the request"),
    (
        "audio-missing",
        "sendAudio",
        {"caption": "x"},
        "Bad Request: there is no audio in the request",
    ),
    (
        "audio-caption-too-long",
        "sendAudio",
        {"audio": "A", "caption": "c" * 1025},
        "Bad Request: message caption is too long",
    ),
    ("album-without-media", "sendMediaGroup", {}, 'Bad Request: parameter "media" is required'),
    (
        "album-not-an-array",
        "sendMediaGroup",
        {"media": {"type": "photo"}},
        "Bad Request: expected an Array of InputMedia",
    ),
    ("album-empty", "sendMediaGroup", {"media": []}, "Bad Request: there are no messages to send"),
    (
        "album-of-one",
        "sendMediaGroup",
        {"media": [PHOTO]},
        "Bad Request: wrong number of messages in the album",
    ),
    (
        "album-of-eleven",
        "sendMediaGroup",
        {"media": [PHOTO] * 11},
        "Bad Request: too many messages to send as an album",
    ),
    (
        "album-item-not-an-object",
        "sendMediaGroup",
        {"media": [PHOTO, "VIDEO-ID"]},
        "Bad Request: can't parse InputMedia: expected an Object",
    ),
    (
        "album-item-without-type",
        "sendMediaGroup",
        {"media": [PHOTO, {"media": "X"}]},
        "Bad Request: can't parse InputMedia: Can't find field \"type\"",
    ),
    (
        "album-with-an-animation",
        "sendMediaGroup",
        {"media": [PHOTO, {"type": "animation", "media": "A"}]},
        "Bad Request: can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup",
    ),
    (
        "album-with-a-voice-note",
        "sendMediaGroup",
        {"media": [AUDIO, {"type": "voice", "media": "V"}]},
        'Bad Request: can\'t parse InputMedia: type "voice" is unsupported',
    ),
    (
        "album-item-without-media",
        "sendMediaGroup",
        {"media": [PHOTO, {"type": "photo"}]},
        "Bad Request: can't parse InputMedia: media not found",
    ),
    (
        "album-of-documents-and-photos",
        "sendMediaGroup",
        {"media": [DOCUMENT, PHOTO]},
        "Bad Request: document can't be mixed with other media types",
    ),
    (
        "album-of-audio-and-video",
        "sendMediaGroup",
        {"media": [VIDEO, AUDIO]},
        "Bad Request: audio can't be mixed with other media types",
    ),
    (
        "album-with-two-caption-placements",
        "sendMediaGroup",
        {"media": [{**PHOTO, "show_caption_above_media": True}, VIDEO]},
        "Bad Request: parameter show_caption_above_media must be the same for all messages",
    ),
    (
        "album-caption-too-long",
        "sendMediaGroup",
        {"media": [{**DOCUMENT, "caption": "c" * 1025}, DOCUMENT]},
        "Bad Request: message caption is too long",
    ),
    (
        "album-caption-bad-markup",
        "sendMediaGroup",
        {"media": [{**PHOTO, "caption": "<b>x", "parse_mode": "HTML"}, VIDEO]},
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    ),
]


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_each_malformed_send_is_refused_as_telegram_refuses_it(
    state: EmulatorState, method: str, params: dict[str, Any], description: str
) -> None:
    reply = state.call(TOKEN, method, {"chat_id": 1, **params})
    assert reply.body == {"ok": False, "error_code": 400, "description": description}
    assert state.recorder.messages() == []


def test_a_keyboard_is_echoed_and_recorded(state: EmulatorState) -> None:
    markup = keyboard(
        {"text": "Open", "url": "https://shop.example/a"},
        {"text": "Vote", "callback_data": "x" * 64},
        {"text": "Channel", "url": "tg://resolve?domain=shop"},
    )
    reply = state.call(TOKEN, "sendMessage", {"chat_id": 1, "text": "x", "reply_markup": markup})
    message = Message.model_validate(reply.body["result"])
    assert message.reply_markup is not None
    assert [b.text for b in message.reply_markup.inline_keyboard[0]] == ["Open", "Vote", "Channel"]
    assert state.recorder.messages()[0].payload["reply_markup"] == markup


def test_link_preview_options_are_echoed(state: EmulatorState) -> None:
    options = {"url": "https://e.example", "prefer_large_media": True, "show_above_text": True}
    reply = state.call(
        TOKEN, "sendMessage", {"chat_id": 1, "text": "see", "link_preview_options": options}
    )
    message = Message.model_validate(reply.body["result"])
    assert message.link_preview_options is not None
    assert message.link_preview_options.prefer_large_media is True
    assert message.link_preview_options.url == "https://e.example"


@pytest.mark.parametrize("kind", ["audio", "voice"])
def test_audio_and_voice_by_url_and_by_file_id(state: EmulatorState, kind: str) -> None:
    method = "send" + kind.capitalize()
    by_url = state.call(
        TOKEN,
        method,
        {"chat_id": 1, kind: "https://f.example/a", "caption": "<i>c</i>", "parse_mode": "HTML"},
    )
    message = Message.model_validate(by_url.body["result"])
    assert message.caption == "c"
    file_id = getattr(message, kind).file_id
    again = state.call(TOKEN, method, {"chat_id": 1, kind: file_id})
    assert getattr(Message.model_validate(again.body["result"]), kind).file_id == file_id


def test_caption_above_media_and_message_effect_are_shown(state: EmulatorState) -> None:
    reply = state.call(
        TOKEN,
        "sendPhoto",
        {
            "chat_id": 1,
            "photo": "P",
            "caption": "up",
            "show_caption_above_media": True,
            "message_effect_id": "5104841245755180586",
        },
    )
    message = Message.model_validate(reply.body["result"])
    assert message.show_caption_above_media is True
    assert message.effect_id == "5104841245755180586"
    # A document's caption has no place above it: Telegram ignores the flag.
    document = state.call(
        TOKEN,
        "sendDocument",
        {"chat_id": 1, "document": "D", "caption": "x", "show_caption_above_media": True},
    )
    assert "show_caption_above_media" not in document.body["result"]


@pytest.mark.parametrize(
    "media",
    [[PHOTO, VIDEO, PHOTO], [DOCUMENT] * 10, [AUDIO, AUDIO]],
    ids=["photos-and-videos", "ten-documents", "audio-files"],
)
def test_albums_of_each_kind_are_one_message_per_item(
    state: EmulatorState, media: list[dict[str, Any]]
) -> None:
    items = [{**media[0], "caption": "first"}, *media[1:]]
    reply = state.call(
        TOKEN,
        "sendMediaGroup",
        {"chat_id": 1, "media": items, "message_effect_id": "5046509860389126442"},
    )
    messages = [Message.model_validate(m) for m in reply.body["result"]]
    assert [m.message_id for m in messages] == list(range(1, len(media) + 1))
    assert len({m.media_group_id for m in messages}) == 1
    assert messages[0].caption == "first"
    assert all(m.effect_id == "5046509860389126442" for m in messages)
    (recorded,) = state.recorder.messages()
    assert (recorded.method, recorded.message_id) == ("sendMediaGroup", 1)


def test_an_album_drops_a_keyboard_as_telegram_does(state: EmulatorState) -> None:
    reply = state.call(
        TOKEN,
        "sendMediaGroup",
        {"chat_id": 1, "media": [PHOTO, VIDEO], "reply_markup": "not even json"},
    )
    assert reply.status == 200
    assert all("reply_markup" not in m for m in reply.body["result"])
