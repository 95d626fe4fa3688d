"""spec.correction: the new text or caption of every message a Broadcast delivered, and what
the messages read once it applies.

Part of the Broadcast contract (:mod:`herald.core.broadcasts`); the control record carries
it to the senders, whose renderer (:mod:`herald.telegram.rendering`) turns it into the edits,
and the ledger names the correction each row shows by :func:`correction_key`.
"""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

from pydantic import Field

from herald.core.contents import CAPTION_MAX_LENGTH, TEXT_MAX_LENGTH, Content, ParseMode
from herald.core.contracts import CelRule, Contract

__all__ = ["Correction", "corrected", "correction_key"]


class Correction(Contract):
    """A new text or caption for every message already delivered (and every one still to
    go): Herald edits each delivered message in place, keeping its buttons."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="has(self.text) != has(self.caption)",
            message="a correction has exactly one of text or caption",
            holds=lambda c: (c.text is None) != (c.caption is None),
        ),
    )

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        description=(
            f"The corrected text of a text message (editMessageText), at most "
            f"{TEXT_MAX_LENGTH} characters; placeholders such as {{first_name}} are filled "
            "in as when sending."
        ),
    )
    caption: str | None = Field(
        default=None,
        min_length=1,
        max_length=CAPTION_MAX_LENGTH,
        description=(
            f"The corrected caption of a media message or album (editMessageCaption), at "
            f"most {CAPTION_MAX_LENGTH} characters."
        ),
    )
    parse_mode: ParseMode = Field(
        default=ParseMode.HTML,
        description="How Telegram reads the corrected text: HTML (default), MarkdownV2 or None.",
    )

    @property
    def words(self) -> str:
        """The corrected text or caption."""
        value = self.text if self.text is not None else self.caption
        assert value is not None  # exactly one of them (CEL)
        return value


def corrected(content: Content, correction: Correction | None) -> Content:
    """`content` as it reads with `correction` applied, for every language variant: what the
    messages sent from now on carry, and what each edit makes a delivered one show."""
    if correction is None:
        return content
    localized = None
    if content.localized:
        localized = {
            code: variant.model_copy(update={"text": correction.words})
            for code, variant in content.localized.items()
        }
    return content.model_copy(
        update={
            "text": correction.words,
            "parse_mode": correction.parse_mode,
            "localized": localized,
        }
    )


def correction_key(correction: Correction) -> str:
    """A short digest naming one correction in the ledger: a row whose key differs from the
    current correction's still shows an older text."""
    body = json.dumps(correction.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]
