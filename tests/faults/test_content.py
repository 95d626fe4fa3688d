"""Odd Unicode in a Broadcast's content and in subscribers' names: astral emoji at the length
limit, right-to-left text, zero-width joiners and spaces, combining marks, flags, markup
characters in names. Each is either refused by the API server with a readable message or
sent exactly as written (the emulator records the very text of each request)."""

from __future__ import annotations

import html

import pytest
import yaml

from herald.core.subscribers import Subscriber
from herald.dev.kubectl import Kubectl
from herald.dev.systems import TOKEN, LocalSystem

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
