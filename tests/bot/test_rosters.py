"""Which bots the process serves, which changes restart one, who reports a Broadcast, how long
a creation dialog is remembered and how many updates run at once: the decisions, on tables."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from pydantic import SecretStr

from herald.bot import rosters
from herald.bot.app import NothingToServe, assemble
from herald.bot.dialogs import DialogStorage
from herald.bot.rosters import ServedBot, Skipped, Wanted, Webhook
from herald.bot.serving import Gate
from herald.bot.settings import BotSettings, Settings
from herald.core import subjects
from herald.core.bots import UpdatesMode
from herald.core.envelopes import BotRecord
from herald.core.sealing import KeyRing, generate_key
from herald.core.settings import TokenKeySettings

RING = KeyRing.parse(generate_key("k1"))


def _served(name: str | None, bot_id: int, namespace: str = "shop", **fields: Any) -> ServedBot:
    return ServedBot(
        namespace=namespace,
        name=name,
        bot_ref=name or "herald-bot",
        bot_id=bot_id,
        admins=frozenset(fields.pop("admins", ())),
        namespaces=fields.pop("namespaces", (namespace,)),
        **fields,
    )


def _wanted(served: ServedBot, *, token: str = "1:t", path: str | None = None) -> Wanted:
    webhook = (
        None
        if path is None
        else Webhook(url=f"https://hooks.example{path}", path=path, secret=SecretStr("s"))
    )
    return Wanted(served=served, token=SecretStr(token), webhook=webhook)


LEGACY = _served(None, 9, namespace="default", namespaces=("default", "shop"))

PLANS = {
    "two-bots": (
        [_wanted(_served("a", 1)), _wanted(_served("b", 2))],
        {"bot.shop.a", "bot.shop.b"},
        {},
    ),
    "one-token-twice: the first key keeps it": (
        [_wanted(_served("b", 1)), _wanted(_served("a", 1))],
        {"bot.shop.a"},
        {"bot.shop.b": "served as shop/a already"},
    ),
    "a Bot takes over the older form's token": (
        [_wanted(LEGACY), _wanted(_served("a", 9))],
        {"bot.shop.a"},
        {rosters.LEGACY_KEY: "served as shop/a already"},
    ),
    "the older form beside Bots": (
        [_wanted(LEGACY), _wanted(_served("a", 1))],
        {"bot.shop.a", rosters.LEGACY_KEY},
        {},
    ),
    "one webhook path twice": (
        [_wanted(_served("a", 1), path="/hook"), _wanted(_served("b", 2), path="/hook")],
        {"bot.shop.a"},
        {"bot.shop.b": "webhook path /hook is shop/a's already"},
    ),
}


@pytest.mark.parametrize(("wanted", "served", "conflicts"), PLANS.values(), ids=PLANS.keys())
def test_plan_serves_each_bot_and_path_once(
    wanted: list[Wanted], served: set[str], conflicts: dict[str, str]
) -> None:
    roster = rosters.plan(wanted)
    assert set(roster.serve) == served
    assert set(roster.conflicts) == set(conflicts)
    for key, why in conflicts.items():
        assert why in roster.conflicts[key]


BASE = _wanted(_served("a", 1, admins={1}))
RESTARTS = {
    "admins changed": (_wanted(_served("a", 1, admins={1, 2})), False),
    "default language changed": (
        _wanted(_served("a", 1, admins={1}, default_language="ru")),
        False,
    ),
    "token changed": (_wanted(_served("a", 1, admins={1}), token="1:new"), True),
    "polling to webhook": (_wanted(_served("a", 1, admins={1}), path="/a"), True),
}


@pytest.mark.parametrize(("new", "restart"), RESTARTS.values(), ids=RESTARTS.keys())
def test_only_token_and_updates_changes_restart_a_bot(new: Wanted, restart: bool) -> None:
    assert rosters.needs_restart(BASE, new) is restart


SHOP_A = _served("a", 1)
SHOP_B = _served("b", 2)
REPORTERS = {
    "the Bot it names": ("shop", "b", SHOP_B),
    "named Bot not served here, older form lists the namespace": ("shop", "c", LEGACY),
    "Broadcast gone: the older form's namespace": ("shop", None, LEGACY),
    "the older form's own namespace": ("default", "herald-bot", LEGACY),
    "nobody here": ("elsewhere", "a", None),
}


@pytest.mark.parametrize(
    ("namespace", "bot_ref", "reporter"), REPORTERS.values(), ids=REPORTERS.keys()
)
def test_the_reporter_is_the_bot_the_broadcast_names(
    namespace: str, bot_ref: str | None, reporter: ServedBot | None
) -> None:
    served = [SHOP_A, SHOP_B, LEGACY]
    assert rosters.reporter_of(served, namespace=namespace, bot_ref=bot_ref) == reporter


def test_the_broadcast_is_read_only_where_a_bot_could_report_it() -> None:
    served = [SHOP_A, SHOP_B, LEGACY]
    assert rosters.reports_need_bot_ref(served, namespace="shop")
    assert not rosters.reports_need_bot_ref(served, namespace="default")
    # A Bot's Broadcast that is gone is nobody's to report but the older form's.
    assert rosters.reporter_of([SHOP_A], namespace="shop", bot_ref=None) is None


def _record(**fields: Any) -> BotRecord:
    key = subjects.bot_record_key("shop", "a")
    values: dict[str, Any] = {
        "namespace": "shop",
        "name": "a",
        "generation": 1,
        "bot_id": "42",
        "username": "a_bot",
        "token": RING.seal("42:tok", bound_to=key),
        "admins": (7,),
    }
    secret = fields.pop("secret", None)
    if secret is not None:
        values["webhook_secret"] = RING.seal(secret, bound_to=key + "/webhook")
    return BotRecord(**(values | fields))


def test_a_record_opens_to_the_bot_it_asks_for() -> None:
    wanted = rosters.wanted_of(_record(default_language="ru"), RING)
    assert isinstance(wanted, Wanted)
    assert wanted.token.get_secret_value() == "42:tok"
    assert wanted.webhook is None
    assert wanted.served == ServedBot(
        namespace="shop",
        name="a",
        bot_ref="a",
        bot_id=42,
        admins=frozenset({7}),
        namespaces=("shop",),
        username="a_bot",
        default_language="ru",
    )
    hooked = rosters.wanted_of(
        _record(updates=UpdatesMode.WEBHOOK, webhook_url="https://hooks.example/a/b", secret="s3"),
        RING,
    )
    assert isinstance(hooked, Wanted)
    assert hooked.webhook == Webhook(
        url="https://hooks.example/a/b", path="/a/b", secret=SecretStr("s3")
    )


SKIPS = {
    "send-only": (_record(updates=UpdatesMode.NONE), "updates mode is none", False),
    "webhook without a secret": (
        _record(updates=UpdatesMode.WEBHOOK, webhook_url="https://hooks.example/a"),
        "secret token",
        True,
    ),
    "sealed for another record": (
        _record(token=RING.seal("42:tok", bound_to="bot.shop.other")),
        "does not open",
        True,
    ),
}


@pytest.mark.parametrize(("record", "reason", "problem"), SKIPS.values(), ids=SKIPS.keys())
def test_records_that_are_not_served_say_why(record: BotRecord, reason: str, problem: bool) -> None:
    skipped = rosters.wanted_of(record, RING)
    assert isinstance(skipped, Skipped)
    assert reason in skipped.reason
    assert skipped.problem is problem


def test_the_older_form_comes_from_settings() -> None:
    assert rosters.legacy_wanted(BotSettings()) is None
    settings = BotSettings(
        token="77:abc", admins=frozenset({5}), namespace="ops", secret_name="tok"
    )
    wanted = rosters.legacy_wanted(settings)
    assert wanted is not None
    assert (wanted.served.key, wanted.served.bot_id, wanted.served.bot_ref) == (
        rosters.LEGACY_KEY,
        77,
        "tok",
    )
    assert wanted.served.admins == {5}
    with pytest.raises(ValueError, match="HERALD_BOT_TOKEN is not a bot token"):
        rosters.legacy_wanted(BotSettings(token="no-colon"))


async def test_a_process_with_nothing_to_serve_refuses_to_start() -> None:
    settings = Settings(bot=BotSettings(), tokens=TokenKeySettings(keys=None, keys_file=None))
    with pytest.raises(NothingToServe, match="HERALD_TOKEN_KEYS"):
        async with assemble(settings):
            pass


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _key(chat: int, bot: int = 1) -> StorageKey:
    return StorageKey(bot_id=bot, chat_id=chat, user_id=chat)


async def test_dialogs_are_kept_only_while_they_go_on() -> None:
    clock = _Clock()
    dialogs = DialogStorage(capacity=2, ttl=60.0, clock=clock)

    # Asking about a chat leaves nothing behind (the FSM asks about every update's chat).
    assert await dialogs.get_state(_key(1)) is None
    assert await dialogs.get_data(_key(1)) == {}
    assert len(dialogs) == 0

    await dialogs.set_state(_key(1), "Creating:audience")
    await dialogs.update_data(_key(1), {"chat_id": 1})
    # Another bot's dialog with the same admin is another dialog.
    assert await dialogs.get_state(_key(1, bot=2)) is None
    clock.now = 59.0
    assert await dialogs.get_data(_key(1)) == {"chat_id": 1}
    clock.now = 61.0  # reading did not keep it: 61 s after its last step
    assert await dialogs.get_state(_key(1)) is None
    assert len(dialogs) == 0

    for chat in (1, 2, 3):
        await dialogs.set_state(_key(chat), "Creating:rate")
    assert len(dialogs) == 2  # the least recently advanced went first
    assert await dialogs.get_state(_key(1)) is None
    assert await dialogs.get_state(_key(3)) == "Creating:rate"

    await dialogs.set_state(_key(3), None)
    await dialogs.set_data(_key(3), {})
    assert await dialogs.get_state(_key(3)) is None
    assert len(dialogs) == 1


async def test_updates_beyond_the_limit_wait_for_room() -> None:
    gate = Gate(2)
    tasks: set[asyncio.Task[None]] = set()
    release = asyncio.Event()
    ran: list[int] = []

    async def update(n: int) -> None:
        ran.append(n)
        await release.wait()

    await gate.admit(update(1), into=tasks)
    await gate.admit(update(2), into=tasks)
    third = asyncio.create_task(gate.admit(update(3), into=tasks))
    for _ in range(10):
        await asyncio.sleep(0)
    # Whoever brings the third update waits: it is not taken, let alone run.
    assert not third.done()
    assert (gate.in_flight, sorted(ran)) == (2, [1, 2])

    release.set()
    await third
    await asyncio.gather(*list(tasks))
    assert (gate.in_flight, sorted(ran)) == (0, [1, 2, 3])
    assert tasks == set()
