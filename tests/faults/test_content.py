"""Odd Unicode in a Broadcast's content and in subscribers' names: astral emoji at the length
limit, right-to-left text, zero-width joiners and spaces, combining marks, flags, markup
characters in names. Each is either refused by the API server with a readable message or
sent exactly as written (the emulator records the very text of each request).

And content errors, which stop early rather than per recipient: a copyFrom whose source
Telegram cannot read stops the broadcast on the first sends (ContentRejected), while a chat
not found once the copy was proven, and a message too long only for one recipient's name,
fail that recipient alone."""

from __future__ import annotations

import html

import pytest
import yaml

from herald.core.subscribers import Subscriber
from herald.dev.kubectl import Kubectl
from herald.dev.systems import TOKEN, LocalSystem

SOURCE = -1_001_234_567_890  # a channel the bot reads

PARTY = "\N{PARTY POPPER}"  # outside the Basic Multilingual Plane: two UTF-16 units
FAMILY = "\N{MAN}\u200d\N{WOMAN}\u200d\N{GIRL}"  # one glyph, five code points
FLAG = "\N{REGIONAL INDICATOR SYMBOL LETTER U}\N{REGIONAL INDICATOR SYMBOL LETTER A}"
RTL = "\u05e9\u05dc\u05d5\u05dd \u200f\u0645\u0631\u062d\u0628\u0627"  # Hebrew, RLM, Arabic
MIXED = (
    f"{RTL} {{first_name}}! {FAMILY} {FLAG} e\u0301 zero\u200bwidth \u2066isolated\u2069 "
    f"\ufe0f\u2764\ufe0f {PARTY}"
)
NAMES = {
    20_001: "\u05d3\u05e0\u05d4",  # Hebrew
    20_002: f"{FAMILY} <b>Bob</b> & Co",  # markup characters must arrive as text
    20_003: "Zo\u00eb \u200dx",
    20_004: "\U0001d4d0\U0001d4f5\U0001d4ee",  # mathematical script letters
}


def broadcast(name: str, content: dict[str, object]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "herald.dev/v1alpha1",
            "kind": "Broadcast",
            "metadata": {"name": name},
            "spec": {
                "botRef": {"name": "bot"},
                "content": content,
                "audience": {"chatIds": [1]},
            },
        },
        allow_unicode=True,
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(
            {"text": PARTY * 4097},
            "spec.content.text: Too long: may not be more than 4096",
            id="4097-astral-emoji",
        ),
        pytest.param(
            {"text": PARTY * 4096 + "\u0301"},
            "spec.content.text: Too long: may not be more than 4096",
            id="4096-emoji-and-a-combining-mark",
        ),
        pytest.param(
            {"text": "x", "localized": {"he": {"text": RTL * 400}}},
            "Too long: may not be more than 4096",
            id="long-localized-rtl",
        ),
        pytest.param(
            {"text": FAMILY * 205, "media": {"type": "photo", "url": "https://img.example/a.png"}},
            "may have at most 1024 characters",
            id="caption-of-zwj-sequences",
        ),
    ],
)
def test_too_long_is_refused_readably(
    kubectl: Kubectl, content: dict[str, object], problem: str
) -> None:
    refused = kubectl("apply", "-f", "-", input=broadcast("odd", content), check=False)
    assert refused.returncode != 0
    assert problem in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


async def test_odd_unicode_is_sent_exactly(herald: LocalSystem) -> None:
    await herald.seed(
        [
            Subscriber(chat, first_name=name, language_code="en", tags=("odd",))
            for chat, name in NAMES.items()
        ]
    )
    herald.apply(
        "astral",
        {"content": {"text": PARTY * 4096, "parseMode": "None"}, "audience": {"chatIds": [30_001]}},
    )
    herald.apply(
        "mixed", {"content": {"text": MIXED}, "audience": {"subscribers": {"tags": ["odd"]}}}
    )
    herald.apply("blank", {"content": {"text": " \n "}, "audience": {"chatIds": [30_002]}})
    await herald.wait_condition("astral", "Complete")
    await herald.wait_condition("mixed", "Complete")
    stalled = await herald.wait_condition("blank", "Stalled")
    assert "message text is empty" in stalled["message"]

    async with herald.emulator() as emulator:
        sent = {m.chat_id: m.payload["text"] for m in await emulator.messages(token=TOKEN)}
    assert sent.pop(30_001) == PARTY * 4096
    # Names are escaped for HTML, the default parse mode, and nothing else changes.
    assert sent == {
        chat: MIXED.replace("{first_name}", html.escape(name, quote=True))
        for chat, name in NAMES.items()
    }


async def _rows(herald: LocalSystem) -> list[tuple[str, str | None, int]]:
    rows = await herald.sql("SELECT state, reason, count(*) AS n FROM deliveries GROUP BY 1, 2")
    return sorted((r["state"], r["reason"], r["n"]) for r in rows)


@pytest.mark.parametrize(
    ("config", "source", "answer"),
    [
        pytest.param(
            {"posts": {str(SOURCE): [41]}},
            {"chatId": SOURCE, "messageId": 42},
            "Bad Request: message to copy not found",
            id="message-gone",
        ),
        pytest.param(
            {"not_found": [SOURCE]},
            {"chatId": SOURCE, "messageId": 42},
            "Bad Request: chat not found",
            id="source-chat-unknown",
        ),
    ],
)
async def test_an_unreadable_copy_source_stops_the_broadcast_within_the_first_sends(
    herald: LocalSystem, config: dict[str, object], source: dict[str, int], answer: str
) -> None:
    await herald.seed(herald.subscribers(100))
    async with herald.emulator() as emulator:
        await emulator.configure(config)
    herald.apply("copy", {"content": {"copyFrom": source}, "audience": {"subscribers": {}}})
    failed = await herald.wait_condition("copy", "Failed")
    assert failed["reason"] == "ContentRejected"
    assert failed["message"] == f"copyFrom chatId {SOURCE} messageId 42: {answer}"
    async with herald.emulator() as emulator:
        summary = await emulator.summary(token=TOKEN)
        refusals = await emulator.refusals(token=TOKEN)
    # Telegram saw only the first few copies, not one per recipient.
    assert summary.total == 0
    assert 1 <= len(refusals) <= 5
    assert {r.description for r in refusals} == {answer}
    await herald.wait_for(
        lambda: herald.status("copy").get("pending") == 0, within=20, what="rows closed"
    )
    assert await _rows(herald) == [("failed", "ContentRejected", 100)]


async def test_a_recipient_chat_not_found_after_a_copy_was_proven_fails_that_recipient(
    herald: LocalSystem,
) -> None:
    await herald.seed(herald.subscribers(20))
    async with herald.emulator() as emulator:
        # The last recipient in the ledger's order: copies to the others prove the source.
        await emulator.configure({"posts": {str(SOURCE): [42]}, "not_found": [10_020]})
    herald.apply(
        "copy",
        {
            "content": {"copyFrom": {"chatId": SOURCE, "messageId": 42}},
            "audience": {"subscribers": {}},
        },
    )
    await herald.wait_condition("copy", "Complete")
    assert herald.condition("copy", "Stalled")["status"] == "False"  # type: ignore[index]
    assert await _rows(herald) == [("delivered", None, 19), ("failed", "ChatNotFound", 1)]
    async with herald.emulator() as emulator:
        copies = await emulator.messages(token=TOKEN, method="copyMessage")
    assert len(copies) == 19
    assert {m.payload["from_chat_id"] for m in copies} == {SOURCE}


async def test_a_name_that_makes_the_text_too_long_fails_that_recipient_alone(
    herald: LocalSystem,
) -> None:
    # The first recipient sent to, before Telegram accepted the text once: still this
    # recipient's problem, not the broadcast's.
    long = Subscriber(10_001, first_name="A" * 64, language_code="en")
    await herald.seed([long, *herald.subscribers(9, start=10_002)])
    text = "<b>Hi</b> {first_name}! " + "x" * 4060  # 4070 characters shown for "User0"
    herald.apply(
        "long", {"content": {"text": text, "parseMode": "HTML"}, "audience": {"subscribers": {}}}
    )
    await herald.wait_condition("long", "Complete")
    status = herald.status("long")
    assert (status["delivered"], status["failed"]) == (9, 1)
    failed = await herald.sql("SELECT chat_id, reason FROM deliveries WHERE state = 'failed'")
    assert [(r["chat_id"], r["reason"]) for r in failed] == [(10_001, "TextTooLong")]
    async with herald.emulator() as emulator:
        sent = await emulator.messages(token=TOKEN)
        refusals = await emulator.refusals(token=TOKEN)
    # Decided before the request: Telegram never saw the message it would refuse.
    assert 10_001 not in {m.chat_id for m in sent}
    assert refusals == []
    assert len(sent) == 9
