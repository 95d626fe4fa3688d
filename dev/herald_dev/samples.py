"""Broadcasts in every state a GitOps tool tells apart, with the status the operator's planner
writes for them: the inputs of the Argo CD health check's tests (``gitops/argocd``) and of the
kstatus tests, so both judge what the operator really reports, not hand-written statuses.

The Argo CD test data is committed beside the health check, in the layout of Argo CD's own
``resource_customizations``; a test fails when it drifts from the planner. Regenerate with::

    python -m herald.dev.samples
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from herald.core.broadcasts import API_VERSION, KIND, BroadcastSpec
from herald.core.contents import (
    CAPTION_MAX_LENGTH,
    CONTENT_MAX_BUTTONS,
    CONTENT_MAX_CHARACTERS,
    TEXT_MAX_LENGTH,
    Content,
    content_characters,
)
from herald.core.contracts import MAX_LANGUAGES
from herald.core.deliveries import DeliveryState
from herald.core.envelopes import FaultReason, FaultRecord
from herald.core.media import ALBUM_MAX_ITEMS, URL_MAX_LENGTH
from herald.core.statuses import BroadcastStatus
from herald.dev.kubectl import repo_root
from herald.operator.planning import Facts, LedgerFacts, SourceState, TokenState, plan

__all__ = [
    "ARGOCD_HEALTH_DIR",
    "CHANNEL_POST",
    "NOW",
    "SAMPLES",
    "Sample",
    "largest_album",
    "largest_content",
    "objects",
    "render_argocd_testdata",
]

ARGOCD_HEALTH_DIR = Path("gitops/argocd/herald.dev/Broadcast")
# The channel post examples/copy-from.yaml copies, (chat id, message id): the dev stack's
# emulator knows it, as Telegram knows a channel's posts, so the example delivers there.
CHANNEL_POST = (-1_001_234_567_890, 42)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_CREATED = NOW - timedelta(minutes=10)
_UID = "5d0f3c1e-7a2b-4c9d-8e6f-000000000001"
_HEADER = "# Generated from the operator's planner by `python -m herald.dev.samples`.\n"

_Spec = dict[str, Any]


# An emoji: one character to the CRD's caps, 4 bytes of UTF-8, 12 bytes in kopf's copy of
# the spec (JSON with ASCII escapes), the costliest character there is to store.
_WIDE = "\U0001f600"


def largest_content() -> dict[str, Any]:
    """``spec.content`` at the size caps of the CRD, in wire form: every language variant
    there may be, the text at Telegram's limit, the most buttons, every character an emoji
    except the default text's markup (a bold tag, so the parse mode is exercised) and the
    buttons' URLs. Tests apply it to see it stored, delivered and measured."""
    per_row = 8
    default_buttons = 80
    rows = [
        [{"text": _WIDE, "url": f"https://example.com/{row}/{col}"} for col in range(per_row)]
        for row in range(default_buttons // per_row)
    ]
    extra = CONTENT_MAX_BUTTONS - default_buttons
    languages = [f"x{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(MAX_LANGUAGES)]
    content: dict[str, Any] = {
        "text": "<b>" + _WIDE * (TEXT_MAX_LENGTH - 7) + "</b>",
        "buttons": rows,
        "localized": {
            language: {
                "text": _WIDE,
                **(
                    {"buttons": [[{"text": _WIDE, "url": "https://example.com/x"}]]}
                    if index < extra
                    else {}
                ),
            }
            for index, language in enumerate(languages)
        },
    }
    # The characters left over go to the last variants' texts, each up to Telegram's limit.
    left = CONTENT_MAX_CHARACTERS - content_characters(Content.model_validate(content))
    for language in reversed(languages):
        variant = content["localized"][language]
        more = min(left, TEXT_MAX_LENGTH - len(variant["text"]))
        variant["text"] += _WIDE * more
        left -= more
    return content


def largest_album() -> dict[str, Any]:
    """``spec.content`` as an album at the size caps, in wire form: the most items, every
    language variant, each caption at Telegram's limit as far as the characters go, the rest
    of the characters in the items' URLs (which count, as the CRD says), all emoji but the
    markup and the URLs' start."""
    languages = [f"x{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(MAX_LANGUAGES)]
    content: dict[str, Any] = {
        "text": "<b>" + _WIDE * (CAPTION_MAX_LENGTH - 7) + "</b>",
        "album": [
            {"type": "photo" if index % 2 == 0 else "video", "url": f"https://example.com/{index}/"}
            for index in range(ALBUM_MAX_ITEMS)
        ],
        "localized": {language: {"text": _WIDE} for language in languages},
    }
    left = CONTENT_MAX_CHARACTERS - content_characters(Content.model_validate(content))
    for item in content["album"]:
        more = min(left, URL_MAX_LENGTH - len(item["url"]))
        item["url"] += _WIDE * more
        left -= more
    for language in languages:
        variant = content["localized"][language]
        more = min(left, CAPTION_MAX_LENGTH - len(variant["text"]))
        variant["text"] += _WIDE * more
        left -= more
    return content


def _spec(**overrides: Any) -> _Spec:
    raw: _Spec = {
        "botRef": {"name": "shop-bot"},
        "content": {"text": "<b>Sale</b> starts now", "parseMode": "HTML"},
        "audience": {"subscribers": {}},
    }
    raw.update(overrides)
    return raw


def _ledger(**counts: int) -> LedgerFacts:
    return LedgerFacts(
        materialised=True,
        published=True,
        total=sum(counts.values()),
        counts={DeliveryState(state): n for state, n in counts.items()},
    )


def _fault(reason: FaultReason, message: str) -> FaultRecord:
    return FaultRecord(uid=_UID, reason=reason, message=message, at=NOW)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One run of the planner: what the operator saw then, and the spec it read then
    (None: the sample's spec)."""

    facts: Facts
    at: datetime = NOW
    spec: _Spec | None = None


@dataclass(frozen=True, kw_only=True)
class Sample:
    """A Broadcast whose status is what the planner wrote after ``steps``, run in order."""

    name: str
    about: str
    spec: _Spec
    steps: tuple[Step, ...]
    generation: int = 1  # metadata.generation now; more than the last step's: a spec change
    deleting: bool = False

    def status(self) -> BroadcastStatus | None:
        status: BroadcastStatus | None = None
        for step in self.steps:
            spec = BroadcastSpec.model_validate(step.spec or self.spec)
            status = plan(spec=spec, status=status, facts=step.facts, now=step.at).status
        return status

    def object(self) -> dict[str, Any]:
        """The Broadcast as the API server would return it."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": "marketing",
            "uid": _UID,
            "generation": self.generation,
            "creationTimestamp": _CREATED.isoformat().replace("+00:00", "Z"),
        }
        if self.deleting:
            metadata["deletionTimestamp"] = NOW.isoformat().replace("+00:00", "Z")
            metadata["finalizers"] = ["herald.dev/finalizer"]
        body: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": BroadcastSpec.model_validate(self.spec).model_dump(
                mode="json", exclude_none=True
            ),
        }
        status = self.status()
        if status is not None:
            # As the operator's merge patch leaves it: a null removes the field.
            body["status"] = status.model_dump(mode="json", exclude_none=True)
        return body


def _facts(**values: Any) -> Facts:
    return Facts(**{"generation": 1, "token": TokenState.FOUND, **values})


def _once(**values: Any) -> tuple[Step, ...]:
    return (Step(facts=_facts(**values)),)


_SENDING = _ledger(pending=600, claimed=25, delivered=370, blocked=3, failed=2)

SAMPLES: tuple[Sample, ...] = (
    Sample(
        name="unobserved",
        about="Just applied; the operator has not written a status yet.",
        spec=_spec(),
        steps=(),
    ),
    Sample(
        name="materialising",
        about="First sight: the audience is being written into the ledger.",
        spec=_spec(),
        steps=_once(),
    ),
    Sample(
        name="scheduled",
        about="spec.schedule.startAt is ahead: waiting, as the spec asks.",
        spec=_spec(schedule={"startAt": "2026-12-24T09:00:00Z"}),
        steps=_once(),
    ),
    Sample(
        name="sending",
        about="Senders at work.",
        spec=_spec(),
        steps=(
            Step(facts=_facts(ledger=_ledger(pending=1000)), at=NOW - timedelta(seconds=40)),
            Step(facts=_facts(ledger=_SENDING)),
        ),
    ),
    Sample(
        name="paused",
        about="spec.paused is true half-way through.",
        spec=_spec(paused=True),
        steps=(
            Step(facts=_facts(ledger=_SENDING), at=NOW - timedelta(seconds=40), spec=_spec()),
            Step(facts=_facts(ledger=_SENDING, generation=2)),
        ),
        generation=2,
    ),
    Sample(
        name="pause-not-yet-observed",
        about="spec.paused was just set (generation 2); the status still speaks of generation 1.",
        spec=_spec(paused=True),
        steps=(Step(facts=_facts(ledger=_SENDING), spec=_spec()),),
        generation=2,
    ),
    Sample(
        name="complete",
        about="Every recipient reached a terminal state.",
        spec=_spec(),
        steps=(
            Step(facts=_facts(ledger=_SENDING), at=NOW - timedelta(minutes=1)),
            Step(facts=_facts(ledger=_ledger(delivered=990, blocked=6, failed=4))),
        ),
    ),
    Sample(
        name="content-rejected",
        about="Telegram refused the markup on the first sends: the broadcast failed for good.",
        spec=_spec(),
        steps=_once(
            ledger=_ledger(pending=998, failed=2),
            fault=_fault(
                FaultReason.CONTENT_REJECTED, "Bad Request: can't parse entities: unclosed tag <b>."
            ),
        ),
    ),
    Sample(
        name="deadline-exceeded",
        about="spec.schedule.deadline passed before every recipient was reached.",
        spec=_spec(schedule={"deadline": "2026-12-01T08:00:00Z"}),
        steps=_once(ledger=_SENDING),
    ),
    Sample(
        name="secret-missing",
        about="spec.botRef names a Secret that does not exist: stalled until it does.",
        spec=_spec(),
        steps=_once(token=TokenState.SECRET_NOT_FOUND),
    ),
    Sample(
        name="budget-exhausted",
        about="The paid broadcast spent spec.rate.starsBudget: held until the budget is raised.",
        spec=_spec(rate={"messagesPerSecond": 100, "allowPaidBroadcast": True, "starsBudget": 50}),
        steps=_once(
            ledger=_SENDING,
            fault=_fault(
                FaultReason.BUDGET_EXHAUSTED, "The broadcast spent its budget of 50 Stars."
            ),
        ),
    ),
    Sample(
        name="dry-run",
        about="spec.dryRun is true: a preview in the status, nothing sent; healthy at once.",
        spec=_spec(
            dryRun=True,
            content={"text": "Sale", "localized": {"ru": {"text": "Скидки"}}},
            rate={"messagesPerSecond": 20, "spreadOver": "2h"},
        ),
        steps=_once(languages={"en": 6200, "ru": 3000, None: 800}),
    ),
    Sample(
        name="from-broadcast-not-found",
        about="spec.audience.fromBroadcast names no Broadcast in the namespace: stalled.",
        spec=_spec(audience={"fromBroadcast": {"name": "last-week", "states": ["failed"]}}),
        steps=_once(source=SourceState.NOT_FOUND),
    ),
    Sample(
        name="deleting",
        about="Deleted while sending: the finalizer is purging its work.",
        spec=_spec(),
        steps=_once(ledger=_SENDING),
        deleting=True,
    ),
)


def objects() -> dict[str, dict[str, Any]]:
    """Every sample as an API object, by name."""
    return {sample.name: sample.object() for sample in SAMPLES}


def _yaml(sample: Sample) -> str:
    text = yaml.safe_dump(sample.object(), sort_keys=False, width=100, allow_unicode=True)
    return f"{_HEADER}# {sample.about}\n{text}"


def render_argocd_testdata(root: Path) -> dict[Path, str]:
    """The committed test inputs of the Argo CD health check, by path."""
    folder = root / ARGOCD_HEALTH_DIR / "testdata"
    return {folder / f"{sample.name}.yaml": _yaml(sample) for sample in SAMPLES}


def _write(pages: Mapping[Path, str], echo: Callable[[str], object]) -> None:
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        echo(f"wrote {path}\n")


def main() -> None:
    _write(render_argocd_testdata(repo_root()), sys.stdout.write)


if __name__ == "__main__":
    main()
