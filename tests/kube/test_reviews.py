"""The review answers kept by herald.kube.reviews: shared by concurrent callers, kept yes
and no alike for their time, never kept when the call failed. (The reviews themselves run
against the real API server in tests/api.)"""

from __future__ import annotations

import asyncio

import pytest

from herald.kube.reviews import _Kept, token_hash


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Asks:
    """An answer that takes a moment, counted."""

    def __init__(self, answer: object = "yes", *, fail: bool = False) -> None:
        self.count = 0
        self.answer = answer
        self.fail = fail

    async def __call__(self) -> object:
        self.count += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("no answer")
        return self.answer


async def test_concurrent_callers_of_one_key_share_one_call() -> None:
    kept: _Kept[str, object] = _Kept(ttl=10, size=100, clock=Clock())
    ask = Asks()
    answers = await asyncio.gather(*(kept.get("k", ask) for _ in range(50)))
    assert answers == ["yes"] * 50
    assert ask.count == 1


@pytest.mark.parametrize("answer", ["allowed", None], ids=["yes", "no"])
async def test_an_answer_is_kept_for_its_time_then_asked_again(answer: object) -> None:
    clock = Clock()
    kept: _Kept[str, object] = _Kept(ttl=10, size=100, clock=clock)
    ask = Asks(answer)
    assert await kept.get("k", ask) == answer
    clock.now += 9.9
    assert await kept.get("k", ask) == answer
    assert ask.count == 1
    clock.now += 0.2
    await kept.get("k", ask)
    assert ask.count == 2


async def test_a_failed_call_is_not_kept() -> None:
    kept: _Kept[str, object] = _Kept(ttl=10, size=100, clock=Clock())
    failing = Asks(fail=True)
    with pytest.raises(ConnectionError):
        await kept.get("k", failing)
    ask = Asks()
    assert await kept.get("k", ask) == "yes"
    assert ask.count == 1


async def test_nothing_is_kept_with_no_time_to_keep_it() -> None:
    kept: _Kept[str, object] = _Kept(ttl=0, size=100, clock=Clock())
    ask = Asks()
    await kept.get("k", ask)
    await kept.get("k", ask)
    assert ask.count == 2


async def test_the_oldest_answers_make_room_for_new_ones() -> None:
    kept: _Kept[str, object] = _Kept(ttl=10, size=2, clock=Clock())
    asks = {key: Asks(key) for key in "abc"}
    for key in "abc":
        await kept.get(key, asks[key])
    await kept.get("c", asks["c"])
    await kept.get("a", asks["a"])
    assert (asks["a"].count, asks["c"].count) == (2, 1)


def test_tokens_are_kept_by_their_hash_only() -> None:
    assert token_hash("secret-token") != "secret-token"
    assert len(token_hash("secret-token")) == 64
