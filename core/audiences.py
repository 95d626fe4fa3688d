"""Who receives a Broadcast: ``spec.audience`` and its subscriber selector.

Part of the Broadcast contract (:mod:`herald.core.broadcasts`). The operator materialises the
audience into the delivery ledger once (:mod:`herald.operator.audiences`), which is why it is
immutable.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from herald.core.contracts import (
    DNS_SUBDOMAIN_PATTERN,
    LANGUAGE_CODE_PATTERN,
    LANGUAGE_CODES,
    MAX_LANGUAGES,
    CelRule,
    Contract,
    LanguageCode,
    cel_string,
    immutable,
    language_codes_valid,
)
from herald.core.deliveries import TERMINAL_STATES, DeliveryState

__all__ = ["SELECTABLE_STATES", "TAG_PATTERN", "Audience", "FromBroadcast", "SubscriberSelector"]

# Bounded for the API server's cost estimate of the CEL rules (see herald.core.contracts).
_MAX_TAGS = 32
_MAX_CHAT_IDS = 10_000
_SEGMENT_PATTERN = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$"
# A subscriber tag, as selected here and as a callback button adds it (herald.core.contents).
TAG_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"


class SubscriberSelector(Contract):
    """Selects active subscribers of the bot; {} selects all of them."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "!has(self.languages) || self.languages.all(lang, "
                f"lang.matches({cel_string(LANGUAGE_CODE_PATTERN)}))"
            ),
            message=f"languages must be {LANGUAGE_CODES}",
            field_path=".languages",
            holds=lambda s: language_codes_valid(s.languages),
        ),
    )

    languages: tuple[LanguageCode, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LANGUAGES,
        description=(
            "Only subscribers whose Telegram language is one of these lowercase codes; "
            "en also matches en-us. Absent: any language."
        ),
    )
    tags: (
        tuple[Annotated[str, Field(min_length=1, max_length=63, pattern=TAG_PATTERN)], ...] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=_MAX_TAGS,
        description=(
            "Only subscribers that carry at least one of these tags (set by the "
            "application in the subscriber table). Absent: any tags."
        ),
    )


# The ledger states fromBroadcast may select: the terminal ones, in the ledger's own words.
SELECTABLE_STATES: tuple[DeliveryState, ...] = tuple(
    state for state in DeliveryState if state in TERMINAL_STATES
)
_STATES_CEL = "[" + ", ".join(cel_string(state.value) for state in SELECTABLE_STATES) + "]"


class FromBroadcast(Contract):
    """The chats of another Broadcast's ledger in some states: send again to those."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=f"self.states.all(s, s in {_STATES_CEL})",
            message="states must be ledger states a recipient ends in: "
            + ", ".join(state.value for state in SELECTABLE_STATES),
            field_path=".states",
            holds=lambda f: all(s in SELECTABLE_STATES for s in f.states),
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Name of another Broadcast in this namespace, of the same Bot. Its ledger is read "
            "once, when this Broadcast starts, and only after that one has finished (Complete "
            "or Failed), so its last outcomes are in."
        ),
    )
    # Plain strings in the schema so the CEL rule above, not an enum, words the refusal.
    states: tuple[Annotated[str, Field(min_length=1, max_length=16)], ...] = Field(
        min_length=1,
        max_length=len(SELECTABLE_STATES),
        description=(
            "Ledger states to select, for example [failed, uncertain]: "
            + ", ".join(state.value for state in SELECTABLE_STATES)
            + ". Recipients who have since blocked the bot or are no longer active "
            "subscribers are left out."
        ),
    )


class Audience(Contract):
    """Who receives the message: the union of all selectors set, deduplicated.

    Subscribers who blocked the bot are always excluded.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule=(
                "has(self.subscribers) || has(self.segment) || has(self.chatIds) || "
                "has(self.fromBroadcast)"
            ),
            message=(
                "audience needs at least one selector: subscribers ({} for all active "
                "subscribers), segment, chatIds or fromBroadcast"
            ),
            holds=lambda a: (
                a.subscribers is not None
                or a.segment is not None
                or a.chat_ids is not None
                or a.from_broadcast is not None
            ),
        ),
        # The ledger is materialised from the audience once; changing it afterwards would
        # silently not apply to recipients already counted.
        immutable("audience"),
    )

    subscribers: SubscriberSelector | None = Field(
        default=None,
        description=(
            "Active subscribers of the Broadcast's bot (those who sent /start to that bot, or "
            "were imported for it, and have not blocked it), optionally filtered by language "
            "and tags. {} selects all of them; another bot's subscribers are never selected."
        ),
    )
    segment: str | None = Field(
        default=None,
        min_length=1,
        max_length=48,
        pattern=_SEGMENT_PATTERN,
        description=(
            "Name of an application-maintained Postgres view herald_segment_<name> with a "
            "chat_id column, dashes in the name becoming underscores (unfinished-poll reads "
            "herald_segment_unfinished_poll). A view that also has a bot_id column gives the "
            "rows of the Broadcast's bot only; without one, all its rows. Read once, when the "
            "Broadcast starts."
        ),
    )
    chat_ids: tuple[Annotated[int, Field(json_schema_extra={"format": "int64"})], ...] | None = (
        Field(
            default=None,
            min_length=1,
            max_length=_MAX_CHAT_IDS,
            description=(
                f"Explicit Telegram chat ids (users, groups or channels), up to {_MAX_CHAT_IDS}. "
                "For larger audiences use a segment."
            ),
        )
    )

    from_broadcast: FromBroadcast | None = Field(
        default=None,
        description=(
            "Chats of another Broadcast's ledger in the given states, for example "
            "{name: last-week, states: [failed, uncertain]} to send again to those who did "
            "not get it. Only chats that are still active subscribers of the bot."
        ),
    )

    @property
    def segment_view(self) -> str | None:
        """The Postgres view that backs ``segment``, a valid unquoted identifier."""
        if self.segment is None:
            return None
        return "herald_segment_" + self.segment.replace("-", "_")
