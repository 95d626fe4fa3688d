"""Which 400s are about the message itself (the same for every recipient) and which about
one recipient, in the words Telegram (and the emulator) use."""

from __future__ import annotations

import pytest

from herald.telegram.outcomes import is_content_error

CONTENT = [
    'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 0',
    "Bad Request: message caption is too long",
    "Bad Request: there is no voice in the request",
    "Bad Request: can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup",
    "Bad Request: document can't be mixed with other media types",
    "Bad Request: audio can't be mixed with other media types",
    "Bad Request: too many messages to send as an album",
    "Bad Request: parameter show_caption_above_media must be the same for all messages",
    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline "
    "keyboard",
    "Bad Request: inline keyboard button URL 'x' is invalid: Wrong HTTP URL",
    "Bad Request: BUTTON_DATA_INVALID",
    "Bad Request: can't parse link preview options JSON object",
    "Bad Request: EFFECT_ID_INVALID",
]
RECIPIENT = [
    "Bad Request: chat not found",
    # Herald sends effects to private chats only; a group that refuses one refuses it alone.
    "Bad Request: can't use message effects in the chat",
    "Bad Request: user not found",
]


@pytest.mark.parametrize("description", CONTENT)
def test_a_fault_of_the_message_is_a_content_error(description: str) -> None:
    assert is_content_error(description)


@pytest.mark.parametrize("description", RECIPIENT)
def test_a_fault_of_one_recipient_is_not(description: str) -> None:
    assert not is_content_error(description)
