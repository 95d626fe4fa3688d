"""Every kind of content and every send option through the whole pipeline (kubectl apply,
operator, NATS, a sender, aiogram) to the emulator, which checks each request as Telegram
would: what the emulator accepted and recorded is what a subscriber would get.

The kinds go as Broadcasts applied together on one system, each to chats of its own, so
they are delivered side by side; one more test applies every example of examples/."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from typing import Any

import yaml

from herald.core.subscribers import Subscriber
from herald.dev.kubectl import repo_root
from herald.dev.samples import CHANNEL_POST, largest_album
from herald.dev.systems import TOKEN
from herald.dev.systems import LocalSystem as Herald
from herald.emulator import RecordedMessage
from herald.telegram.rendering import parse_callback_data

GROUP = -100_500  # a group chat: no subscriber, no message effect
EFFECT = "5104841245755180586"
MEDIA_TYPES = ("photo", "video", "document", "animation", "audio", "voice")
# Telegram can put these captions above the media.
ABOVE = frozenset({"photo", "video", "animation"})

HTML_CHAT, PLAIN_CHAT = 20_011, 20_014
PEOPLE = [
    # HTML must escape all of <, &, > and ' (a quote could end a single-quoted attribute).
    Subscriber(chat_id=HTML_CHAT, first_name="O'Brien <&>", language_code="en"),
    Subscriber(chat_id=PLAIN_CHAT, first_name="Jörg", last_name="[x]", language_code="de"),
    Subscriber(chat_id=20_001, first_name="O'Brien <&>", language_code="en"),
    Subscriber(chat_id=20_002, first_name="Zé_*", language_code="pt-br"),
    Subscriber(chat_id=20_003, first_name="Ana.", language_code="pt-pt"),
    Subscriber(chat_id=20_004, first_name="Jörg", last_name="[x]", language_code="de"),
    Subscriber(chat_id=20_005, first_name="Иван", language_code="ru"),
]
MEDIA_CASES = list(itertools.product(MEDIA_TYPES, ("url", "fileId")))
MEDIA_CHATS = {case: 30_001 + i for i, case in enumerate(MEDIA_CASES)}
ALBUM_CHATS = {"album-visual": 30_020, "album-documents": 30_021, "album-audio": 30_022}
COPY_CHAT = 30_030
LARGEST_CHAT = 30_040


def media_source(kind: str, form: str) -> str:
    return f"https://files.example/{kind}.bin" if form == "url" else f"{kind.upper()}-FILE-ID"


def broadcasts() -> dict[str, dict[str, Any]]:
    """Each Broadcast's spec (botRef aside), by name."""
    specs: dict[str, dict[str, Any]] = {
        "text-html": {
            "content": {
                "text": "<b>Hi</b> {first_name}, read https://blog.example/post",
                "linkPreview": {
                    "url": "https://blog.example/post",
                    "preferLargeMedia": True,
                    "showAboveText": True,
                },
                "messageEffectId": EFFECT,
                "disableNotification": True,
                "protectContent": True,
                "buttons": [
                    [
                        {"text": "Shop", "url": "https://shop.example"},
                        {"text": "Yes", "callback": "yes", "answer": "Noted"},
                    ]
                ],
            },
            "audience": {"chatIds": [HTML_CHAT, GROUP]},
        },
        "text-markdown": {
            "content": {
                "text": "*Hi* {first_name}",
                "parseMode": "MarkdownV2",
                "buttons": [[{"text": "Open", "url": "https://app.example"}]],
                "localized": {
                    "pt-br": {"text": "*Olá* {first_name}"},
                    "pt": {"text": "*Oi* {first_name}"},
                    "ru": {
                        "text": "*Привет* {first_name}",
                        "buttons": [[{"text": "Открыть", "url": "https://app.example"}]],
                    },
                },
            },
            "audience": {"chatIds": [20_001, 20_002, 20_003, 20_004, 20_005]},
        },
        "text-plain": {
            "content": {
                "text": "{full_name} <b>stays as it is</b>",
                "parseMode": "None",
                "linkPreview": {"disabled": True},
            },
            "audience": {"chatIds": [PLAIN_CHAT]},
        },
        "album-visual": {
            "content": {
                "album": [
                    {"type": "photo", "url": "https://files.example/1.jpg"},
                    {"type": "video", "fileId": "VIDEO-FILE-ID"},
                    {"type": "photo", "fileId": "PHOTO-FILE-ID"},
                    {"type": "video", "url": "https://files.example/4.mp4"},
                ],
                "text": "<b>Summer</b> for {first_name}",
                "showCaptionAboveMedia": True,
                "messageEffectId": EFFECT,
                "protectContent": True,
            },
            "audience": {"chatIds": [ALBUM_CHATS["album-visual"]]},
        },
        "album-documents": {
            "content": {
                "album": [
                    {"type": "document", "url": "https://files.example/a.pdf"},
                    {"type": "document", "fileId": "DOCUMENT-FILE-ID"},
                ],
                "text": "Two files, {first_name}.",
                "parseMode": "None",
            },
            "audience": {"chatIds": [ALBUM_CHATS["album-documents"]]},
        },
        "album-audio": {
            "content": {
                "album": [
                    {"type": "audio", "fileId": "AUDIO-FILE-ID"},
                    {"type": "audio", "url": "https://files.example/b.mp3"},
                ],
            },
            "audience": {"chatIds": [ALBUM_CHATS["album-audio"]]},
        },
        "copy": {
            "content": {
                "copyFrom": {"chatId": CHANNEL_POST[0], "messageId": CHANNEL_POST[1]},
                "buttons": [[{"text": "More", "callback": "more"}]],
                "messageEffectId": EFFECT,
                "disableNotification": True,
                "protectContent": True,
            },
            "audience": {"chatIds": [COPY_CHAT]},
        },
    }
    # The largest album the CRD admits, stored through kubectl's client-side apply.
    specs["largest-album"] = {"content": largest_album(), "audience": {"chatIds": [LARGEST_CHAT]}}
    for (kind, form), chat in MEDIA_CHATS.items():
        media = {"type": kind, form: media_source(kind, form)}
        content: dict[str, Any] = {"media": media, "text": f"<i>{kind}</i> for {{first_name}}"}
        if kind in ABOVE and form == "url":
            content["showCaptionAboveMedia"] = True
        specs[f"{kind}-{form.lower()}"] = {"content": content, "audience": {"chatIds": [chat]}}
    return specs


def others() -> list[Subscriber]:
    chats = [*MEDIA_CHATS.values(), *ALBUM_CHATS.values(), COPY_CHAT, LARGEST_CHAT]
    return [Subscriber(chat_id=chat, first_name=f"M{chat}", language_code="en") for chat in chats]


async def all_complete(herald: Herald, *names: str, within: int = 120) -> None:
    waited = await asyncio.to_thread(
        herald.kubectl,
        "wait",
        "--for=condition=Complete",
        *(f"bc/{name}" for name in names),
        f"--timeout={within}s",
        timeout=within + 10,
    )
    assert waited.stdout.count("condition met") == len(names), waited.stdout


async def sent_to(herald: Herald) -> dict[int, RecordedMessage]:
    async with herald.emulator() as emulator:
        messages = [m for m in await emulator.messages(token=TOKEN) if m.sending]
    by_chat = {m.chat_id: m for m in messages if m.chat_id is not None}
    assert len(by_chat) == len(messages), "a chat got more than one message"
    return by_chat


async def know_the_channel_post(herald: Herald) -> None:
    """The post the copyFrom broadcasts (and examples/copy-from.yaml) copy: the emulator
    refuses a copy of a message it does not know, as Telegram does."""
    async with herald.emulator() as emulator:
        await emulator.configure({"posts": {str(CHANNEL_POST[0]): [CHANNEL_POST[1]]}})


async def test_every_kind_and_option_is_delivered_as_telegram_expects(herald: Herald) -> None:
    await herald.seed([*PEOPLE, *others()])
    await know_the_channel_post(herald)
    specs = broadcasts()
    for name, spec in specs.items():
        herald.apply(name, spec)
    await all_complete(herald, *specs)
    for name, spec in specs.items():
        status = herald.status(name)
        assert (status["delivered"], status.get("failed", 0)) == (
            len(spec["audience"]["chatIds"]),
            0,
        ), name
    sent = await sent_to(herald)
    async with herald.emulator() as emulator:
        assert await emulator.refusals(token=TOKEN) == []

    # HTML: placeholders escaped, quote included; every option on the wire as Telegram names it.
    html = sent[HTML_CHAT]
    assert html.method == "sendMessage"
    keyboard = html.payload.pop("reply_markup")["inline_keyboard"]
    assert html.payload == {
        "chat_id": HTML_CHAT,
        "text": "<b>Hi</b> O&#39;Brien &lt;&amp;&gt;, read https://blog.example/post",
        "parse_mode": "HTML",
        "link_preview_options": {
            "url": "https://blog.example/post",
            "prefer_large_media": True,
            "show_above_text": True,
        },
        "message_effect_id": EFFECT,
        "disable_notification": True,
        "protect_content": True,
    }
    shop, yes = keyboard[0]
    assert shop == {"text": "Shop", "url": "https://shop.example"}
    press = parse_callback_data(yes["callback_data"])
    uid = herald.get("text-html")["metadata"]["uid"]
    assert (yes["text"], press and press.broadcast_uid, press and press.callback) == (
        "Yes",
        uid,
        "yes",
    )
    # A group gets the same message without the effect, which Telegram would refuse there.
    group = sent[GROUP].payload
    assert "message_effect_id" not in group
    assert group["text"] == "<b>Hi</b> , read https://blog.example/post"

    # MarkdownV2 and the variants: pt-br exact, pt-pt falls back to pt, de to the default.
    expected = {
        20_001: ("*Hi* O'Brien <&\\>", "Open"),
        20_002: ("*Olá* Zé\\_\\*", "Open"),
        20_003: ("*Oi* Ana\\.", "Open"),
        20_004: ("*Hi* Jörg", "Open"),
        20_005: ("*Привет* Иван", "Открыть"),
    }
    assert {
        chat: (
            sent[chat].payload["text"],
            sent[chat].payload["parse_mode"],
            sent[chat].payload["reply_markup"]["inline_keyboard"][0][0]["text"],
        )
        for chat in expected
    } == {chat: (text, "MarkdownV2", button) for chat, (text, button) in expected.items()}

    # No parse mode: nothing escaped, the markup left as text; the preview switched off.
    assert sent[PLAIN_CHAT].payload == {
        "chat_id": PLAIN_CHAT,
        "text": "Jörg [x] <b>stays as it is</b>",
        "link_preview_options": {"is_disabled": True},
    }

    # Every media type by URL and by file_id, captioned, placeholders filled.
    for (kind, form), chat in MEDIA_CHATS.items():
        message = sent[chat]
        assert message.method == "send" + kind.capitalize(), (kind, form)
        expected_media = {
            "chat_id": chat,
            kind: media_source(kind, form),
            "caption": f"<i>{kind}</i> for M{chat}",
            "parse_mode": "HTML",
        }
        if kind in ABOVE and form == "url":
            expected_media["show_caption_above_media"] = True
        assert message.payload == expected_media, (kind, form)

    # Albums: one sendMediaGroup, the caption on the first item, no keyboard; the ledger keeps
    # the first message's id.
    visual = sent[ALBUM_CHATS["album-visual"]]
    assert visual.method == "sendMediaGroup"
    assert visual.payload["message_effect_id"] == EFFECT
    assert visual.payload["protect_content"] is True
    assert "reply_markup" not in visual.payload
    assert visual.payload["media"] == [
        {
            "type": "photo",
            "media": "https://files.example/1.jpg",
            "caption": f"<b>Summer</b> for M{ALBUM_CHATS['album-visual']}",
            "parse_mode": "HTML",
            "show_caption_above_media": True,
        },
        {"type": "video", "media": "VIDEO-FILE-ID", "show_caption_above_media": True},
        {"type": "photo", "media": "PHOTO-FILE-ID", "show_caption_above_media": True},
        {
            "type": "video",
            "media": "https://files.example/4.mp4",
            "show_caption_above_media": True,
        },
    ]
    documents = sent[ALBUM_CHATS["album-documents"]].payload["media"]
    assert documents == [
        {
            "type": "document",
            "media": "https://files.example/a.pdf",
            "caption": f"Two files, M{ALBUM_CHATS['album-documents']}.",
        },
        {"type": "document", "media": "DOCUMENT-FILE-ID"},
    ]
    assert sent[ALBUM_CHATS["album-audio"]].payload["media"] == [
        {"type": "audio", "media": "AUDIO-FILE-ID"},
        {"type": "audio", "media": "https://files.example/b.mp3"},
    ]
    rows = await herald.sql(
        "SELECT chat_id, message_id FROM deliveries WHERE chat_id = ANY($1::bigint[])",
        list(ALBUM_CHATS.values()),
    )
    assert {r["chat_id"]: r["message_id"] for r in rows} == {
        chat: sent[chat].message_id for chat in ALBUM_CHATS.values()
    }
    assert all(sent[chat].message_id == 1 for chat in ALBUM_CHATS.values())

    largest = specs["largest-album"]["content"]
    assert [item["media"] for item in sent[LARGEST_CHAT].payload["media"]] == [
        item["url"] for item in largest["album"]
    ]
    assert sent[LARGEST_CHAT].payload["media"][0]["caption"] == largest["text"]

    # copyFrom: the post as it is, with the keyboard and the flags.
    copy = sent[COPY_CHAT]
    assert copy.method == "copyMessage"
    more = copy.payload.pop("reply_markup")["inline_keyboard"][0][0]
    assert copy.payload == {
        "chat_id": COPY_CHAT,
        "from_chat_id": -1_001_234_567_890,
        "message_id": 42,
        "message_effect_id": EFFECT,
        "disable_notification": True,
        "protect_content": True,
    }
    assert (
        more["text"],
        getattr(parse_callback_data(more["callback_data"]), "callback", None),
    ) == (
        "More",
        "more",
    )


DEMO_TOKEN = "123456:demo"  # examples/bot-secret.yaml's, the same bot id as the system's Bot
EXAMPLES = repo_root() / "examples"


def example_documents() -> list[dict[str, Any]]:
    # Some files hold several documents (examples/transactional-app.yaml).
    return [
        document
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


async def test_every_example_is_applied_and_delivered(herald: Herald) -> None:
    documents = example_documents()
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "Broadcast"]
    assert len(names) >= 13
    # Who the examples' audiences select: subscribers of the demo bot (all of them; en and de
    # with the beta tag) and the segment examples/copy-from.yaml names.
    await herald.seed(
        [
            Subscriber(chat_id=40_001, first_name="Ann", language_code="en", tags=("beta",)),
            Subscriber(chat_id=40_002, first_name="Bernd", language_code="de", tags=("beta",)),
            Subscriber(chat_id=40_003, first_name="Пётр", language_code="ru"),
            Subscriber(chat_id=40_004, first_name="Zé", language_code="pt-br"),
        ]
    )
    await herald.sql(
        "CREATE VIEW herald_segment_unfinished_poll AS SELECT 40003::bigint AS chat_id"
    )
    await know_the_channel_post(herald)
    herald.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    # The two that wait as they were written: started here instead of on New Year's Eve, and
    # resumed once seen paused.
    await herald.wait_for(
        lambda: herald.status("new-year").get("phase") == "Scheduled", what="new-year Scheduled"
    )
    await herald.wait_condition("maintenance-notice", "Paused")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for name, patch in (
        ("new-year", {"spec": {"schedule": {"startAt": now}}}),
        ("maintenance-notice", {"spec": {"paused": False}}),
    ):
        herald.kubectl("patch", "bc", name, "--type=merge", "-p", json.dumps(patch))

    await all_complete(herald, *names, within=180)
    for name in names:
        status = herald.status(name)
        assert status["total"] > 0, name
        assert (status["delivered"], status.get("failed", 0), status.get("blocked", 0)) == (
            status["total"],
            0,
            0,
        ), name
    async with herald.emulator() as emulator:
        sent = [m for m in await emulator.messages(token=DEMO_TOKEN) if m.sending]
        assert await emulator.refusals(token=DEMO_TOKEN, status=400) == []
    assert len(sent) == sum(herald.status(name)["delivered"] for name in names)
    assert {m.method for m in sent} >= {
        "sendMessage",
        "sendPhoto",
        "sendAnimation",
        "sendAudio",
        "sendVoice",
        "sendMediaGroup",
        "copyMessage",
    }
    # examples/voice.yaml: the effect in private chats, none in its two groups.
    voice = [m for m in sent if m.method == "sendVoice"]
    assert {m.chat_id: "message_effect_id" in m.payload for m in voice} == {
        40_001: True,
        40_002: True,
        40_003: True,
        40_004: True,
        -1_001_234_567_890: False,
        -1_009_876_543_210: False,
    }
