"""The content's own size caps: what they admit fits where Herald keeps a Broadcast's spec."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from herald.core import envelopes
from herald.core.contents import CONTENT_MAX_CHARACTERS, Content, content_characters
from herald.core.envelopes import BroadcastState, ControlRecord, SendRate
from herald.dev.samples import largest_album, largest_content

# The largest contents the CRD admits: a text with the most buttons, and an album.
LARGEST = pytest.mark.parametrize(
    "largest", [largest_content, largest_album], ids=["text", "album"]
)

# The API server's bound on all of an object's annotations together.
ANNOTATIONS_MAX_BYTES = 256 * 1024
# NATS's default max_payload.
NATS_MAX_PAYLOAD = 1024 * 1024


def kopf_copy(spec: dict[str, Any]) -> int:
    """Bytes of kopf's last-handled-configuration: the spec as json.dumps writes it."""
    return len(json.dumps({"spec": spec}, separators=(",", ":")).encode())


def kubectl_copy(manifest: dict[str, Any]) -> int:
    """Bytes of kubectl's last-applied-configuration: Go's encoding/json, which writes UTF-8
    as it is and escapes <, >, & and the two line separators as \\u00XX."""
    text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False)
    for character in "<>&\u2028\u2029":
        text = text.replace(character, f"\\u{ord(character):04x}")
    return len(text.encode())


@LARGEST
def test_the_largest_content_fits_both_copies_of_the_spec_in_the_annotations(
    largest: Callable[[], dict[str, Any]],
) -> None:
    content = largest()
    assert content_characters(Content.model_validate(content)) == CONTENT_MAX_CHARACTERS
    spec = {
        "botRef": {"name": "a" * 253},
        "content": content,
        "audience": {"subscribers": {}, "chatIds": list(range(-(10**12), -(10**12) + 1000))},
    }
    manifest = {
        "apiVersion": "herald.dev/v1alpha1",
        "kind": "Broadcast",
        "metadata": {"name": "b" * 253, "namespace": "c" * 63},
        "spec": spec,
    }
    used = kopf_copy(spec) + kubectl_copy(manifest)
    # A margin for the other annotations a GitOps tool adds (Argo CD's tracking id, Flux's).
    assert used <= ANNOTATIONS_MAX_BYTES - 16 * 1024, used


@LARGEST
def test_the_largest_content_fits_a_control_record_many_times_over(
    largest: Callable[[], dict[str, Any]],
) -> None:
    record = ControlRecord(
        uid="0" * 36,
        namespace="n",
        name="b",
        generation=1,
        bot_id="1",
        content=Content.model_validate(largest()),
        rate=SendRate(messages_per_second=30),
        state=BroadcastState.ACTIVE,
        deadline=datetime.now(UTC),
    )
    assert len(envelopes.encode(record)) <= NATS_MAX_PAYLOAD // 8


def test_one_character_more_is_refused() -> None:
    content = largest_content()
    content["buttons"][0][0]["text"] += "x"
    with pytest.raises(ValidationError, match="content is too large"):
        Content.model_validate(content)


def test_one_character_more_in_an_album_url_is_refused() -> None:
    content = largest_album()
    content["album"][-1]["url"] += "x"
    with pytest.raises(ValidationError, match="content is too large"):
        Content.model_validate(content)
