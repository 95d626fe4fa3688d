"""The HTTP contract: a real aiogram Bot against the real server, unmodified."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
)
from aiogram.types import Message as TelegramMessage

from herald.emulator import (
    EmulatorClient,
    EmulatorConfig,
    EmulatorState,
    Limits,
    ManualClock,
    RunningEmulator,
    run_emulator,
)

TOKEN = "123456:test-token"


def _message(text: str, *, chat_id: int = 42) -> dict[str, Any]:
    return {
        "message_id": 1,
        "date": 1700000000,
        "text": text,
        "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
    }


async def test_send_message(bot: Bot, control: EmulatorClient) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot) == (123456, True)
    message = await bot.send_message(42, "<b>Sale</b> starts now", parse_mode="HTML")
    assert (message.message_id, message.chat.id, message.text) == (1, 42, "Sale starts now")
    assert message.from_user is not None and message.from_user.id == 123456
    [recorded] = await control.messages(token=TOKEN)
    assert (recorded.method, recorded.chat_id, recorded.message_id) == ("sendMessage", 42, 1)
    # Form-encoded values arrive decoded, whichever encoding the client chose.
    assert recorded.payload == {
        "chat_id": 42,
        "text": "<b>Sale</b> starts now",
        "parse_mode": "HTML",
    }


async def test_reply_markup_is_decoded_and_echoed(bot: Bot, control: EmulatorClient) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Open", url="https://shop.example")]]
    )
    message = await bot.send_message(42, "x", reply_markup=keyboard, disable_notification=True)
    assert message.reply_markup is not None
    assert message.reply_markup.model_dump() == keyboard.model_dump()
    [recorded] = await control.messages()
    assert recorded.payload["reply_markup"] == {
        "inline_keyboard": [[{"text": "Open", "url": "https://shop.example"}]]
    }
    assert recorded.payload["disable_notification"] is True


async def test_flood_surfaces_as_retry_after(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"limits": {"per_chat_rate": 1}})
    await bot.send_message(42, "first")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(42, "second")
    assert raised.value.retry_after >= 1
    assert "Too Many Requests: retry after" in raised.value.message
    summary = await control.summary()
    assert summary.total == 1
    assert summary.too_many_requests == {TOKEN: 1}


async def test_storm_answers_its_retry_after(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"faults": {"storm": {"retry_after": 9, "seconds": 60}}})
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(42, "x")
    assert raised.value.retry_after == 9
    await control.configure({"faults": {"storm": None}})
    assert (await bot.send_message(42, "x")).message_id == 1


async def test_configured_chats(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"blocked": [5], "deactivated": [6], "not_found": [7]})
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(5, "x")
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(6, "x")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(7, "x")
    summary = await control.summary()
    assert (summary.total, summary.errors) == (0, {403: 2, 400: 1})


async def test_bad_markup_and_length(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(42, "<blink>x</blink>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Character '!'"):
        await bot.send_message(42, "Hi!", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(42, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(42, "https://img.example/a.png", caption="c" * 1025)


async def test_send_photo_by_url_file_id_and_upload(bot: Bot, control: EmulatorClient) -> None:
    by_url = await bot.send_photo(
        42, "https://img.example/a.png", caption="<i>new</i>", parse_mode="HTML"
    )
    assert by_url.photo is not None and by_url.caption == "new"
    file_id = by_url.photo[-1].file_id
    by_id = await bot.send_photo(43, file_id)
    assert by_id.photo is not None and by_id.photo[-1].file_id == file_id
    upload = BufferedInputFile(b"\x89PNG fake image", filename="sale.png")
    uploaded = await bot.send_photo(44, upload)  # multipart/form-data
    assert uploaded.photo is not None
    recorded = await control.messages(chat_id=44)
    attached = recorded[0].payload["photo"].removeprefix("attach://")
    assert recorded[0].payload[attached] == {"filename": "sale.png", "size": 15}


async def test_other_media(bot: Bot) -> None:
    video = await bot.send_video(42, "https://v.example/a.mp4", caption="v")
    assert video.video is not None and video.caption == "v"
    document = await bot.send_document(43, BufferedInputFile(b"%PDF", filename="a.pdf"))
    assert document.document is not None
    animation = await bot.send_animation(44, "https://g.example/a.gif")
    assert animation.animation is not None


async def test_copy_message(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"posts": {"-1001234": [42]}})  # JSON keys are strings
    copied = await bot.copy_message(42, from_chat_id=-1001234, message_id=42, caption="new")
    assert copied.message_id == 1
    [recorded] = await control.messages()
    assert recorded.payload["from_chat_id"] == -1001234


async def test_send_media_group(bot: Bot, control: EmulatorClient) -> None:
    messages = await bot.send_media_group(
        42,
        media=[
            InputMediaPhoto(media="https://img.example/1.png", caption="one"),
            InputMediaVideo(media=BufferedInputFile(b"video", filename="v.mp4")),
        ],
    )
    assert [m.message_id for m in messages] == [1, 2]
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    assert messages[1].video is not None
    summary = await control.summary()
    assert summary.per_method == {"sendMediaGroup": 1}


async def test_get_updates_respects_offset(bot: Bot, control: EmulatorClient) -> None:
    assert await bot.delete_webhook(drop_pending_updates=True)
    ids = await control.inject_updates(
        TOKEN, [{"message": _message("a")}, {"message": _message("b")}]
    )
    assert ids == [1, 2]
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["a", "b"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == []
    await control.inject_updates(TOKEN, [{"message": _message("c")}])
    [later] = await bot.get_updates(offset=3)
    assert (later.update_id, later.message and later.message.text) == (3, "c")


async def test_long_polling_returns_when_an_update_arrives(
    bot: Bot, control: EmulatorClient
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await asyncio.sleep(0.1)
    await control.inject_updates(TOKEN, [{"message": _message("hello")}])
    [update] = await asyncio.wait_for(poll, 5)
    assert update.message is not None and update.message.text == "hello"
    assert time.monotonic() - started < 5


async def test_edit_message_text_and_answer_callback_query(
    bot: Bot, control: EmulatorClient
) -> None:
    sent = await bot.send_message(42, "draft")
    edited = await bot.edit_message_text(
        "<b>final</b>", chat_id=42, message_id=sent.message_id, parse_mode="HTML"
    )
    assert isinstance(edited, TelegramMessage)
    assert (edited.message_id, edited.text) == (sent.message_id, "final")
    assert await bot.answer_callback_query("query-1", text="Done")
    assert await bot.set_my_commands([]) is True
    summary = await control.summary()
    assert summary.per_method == {
        "sendMessage": 1,
        "editMessageText": 1,
        "answerCallbackQuery": 1,
        "setMyCommands": 1,
    }
    [answer] = await control.messages(method="answerCallbackQuery")
    assert answer.payload == {"callback_query_id": "query-1", "text": "Done"}


async def test_server_errors(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"faults": {"error_ratio": 1.0}, "seed": 1})
    for _ in range(3):
        with pytest.raises(TelegramServerError):
            await bot.send_message(42, "x")
    summary = await control.summary()
    assert summary.total == 0
    assert sum(summary.errors.values()) == 3
    assert set(summary.errors) <= {500, 502}


async def test_dropped_answer_is_a_network_error_but_delivered(
    bot: Bot, control: EmulatorClient
) -> None:
    await control.configure({"faults": {"drop_ratio": 1.0}})
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(42, "sent, outcome unknown")
    [recorded] = await control.messages()
    assert recorded.dropped
    assert recorded.payload["text"] == "sent, outcome unknown"
    await control.configure({"faults": {"drop_ratio": 0.0}})
    assert (await bot.send_message(42, "next")).message_id == 2


async def test_latency(bot: Bot, control: EmulatorClient) -> None:
    await control.configure({"faults": {"latency_ms": 150}})
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.15


async def test_a_late_wake_up_of_the_latency_does_not_move_the_arrival(
    bot: Bot, control: EmulatorClient
) -> None:
    # The injected latency is the network's: a request arrives that long after it was
    # received, however late this (busy) process wakes from the wait.
    await control.configure({"faults": {"latency_ms": 100}})
    started = time.monotonic()
    sending = asyncio.ensure_future(bot.send_message(42, "late"))
    await asyncio.sleep(0.03)
    time.sleep(0.15)  # noqa: ASYNC251  # the loop is busy past the latency's end, on purpose
    await sending
    answered = time.monotonic() - started
    (message,) = await control.messages(token=TOKEN)
    assert answered >= 0.18
    assert 0.1 <= message.monotonic - started < 0.13


async def test_raw_http(emulator: RunningEmulator) -> None:
    """What aiogram cannot send: bad tokens, JSON bodies, GET with a query string."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emulator.url}/botnot-a-token/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{emulator.url}/bot{TOKEN}/sendPigeon") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        body = {"chat_id": 7, "text": "json", "reply_markup": {"inline_keyboard": []}}
        async with http.post(f"{emulator.url}/bot{TOKEN}/sendMessage", json=body) as response:
            assert (await response.json())["result"]["text"] == "json"
        url = f"{emulator.url}/bot{TOKEN}/sendMessage?chat_id=8&text=query"
        async with http.get(url) as response:
            assert (await response.json())["result"]["chat"]["id"] == 8
        async with http.post(
            f"{emulator.url}/bot{TOKEN}/sendMessage",
            data=b"{",
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
    assert [m.chat_id for m in emulator.state.recorder.messages()] == [7, 8]


async def test_control_endpoints(emulator: RunningEmulator, control: EmulatorClient) -> None:
    config = await control.configure({"limits": {"rate": 7}, "blocked": [1]})
    assert (config.limits.rate, config.blocked) == (7, frozenset({1}))
    assert await control.config() == emulator.state.config
    with pytest.raises(ValueError, match="400"):
        await control.configure({"limits": {"rat": 7}})
    with pytest.raises(ValueError, match="not a bot token"):
        await control.inject_updates("nope", [{"message": _message("x")}])
    emulator.state.call(TOKEN, "sendMessage", {"chat_id": 2, "text": "x"})
    assert (await control.summary(token=TOKEN)).total == 1
    assert (await control.summary(token="999:other")).total == 0
    await control.reset()
    assert (await control.summary()).total == 0
    assert (await control.config()).limits.rate == 1000


async def test_aiogram_dispatcher_polls_and_answers(bot: Bot, control: EmulatorClient) -> None:
    """The bot's real loop: getUpdates long polling, a handler replying and editing."""
    dispatcher = Dispatcher()
    handled = asyncio.Event()

    @dispatcher.message()
    async def echo(message: TelegramMessage) -> None:
        await message.answer(f"echo: {message.text}")

    @dispatcher.callback_query()
    async def press(query: CallbackQuery) -> None:
        await query.answer("pressed")
        handled.set()

    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        await control.inject_updates(
            TOKEN,
            [
                {"message": _message("hi")},
                {
                    "callback_query": {
                        "id": "cb-1",
                        "chat_instance": "c",
                        "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
                        "data": "go",
                    }
                },
            ],
        )
        await asyncio.wait_for(handled.wait(), 10)
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 10)
    [reply] = await control.messages(method="sendMessage")
    assert (reply.chat_id, reply.payload["text"]) == (42, "echo: hi")
    [answer] = await control.messages(method="answerCallbackQuery")
    assert answer.payload["text"] == "pressed"


async def test_run_emulator_with_a_manual_clock() -> None:
    """A state passed in keeps its clock, so limits over HTTP are deterministic too."""
    clock = ManualClock()
    state = EmulatorState(EmulatorConfig(limits=Limits(rate=2, per_chat_rate=0)), clock=clock)
    async with run_emulator(state=state) as running:
        assert running.state is state
        assert running.url == f"http://127.0.0.1:{running.port}"
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(running.url)))
        try:
            await bot.send_message(1, "a")
            await bot.send_message(2, "b")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(3, "c")
            clock.advance(1.0)
            assert (await bot.send_message(3, "c")).chat.id == 3
        finally:
            await bot.session.close()
    with pytest.raises(ValueError, match="not both"):
        async with run_emulator(EmulatorConfig(), state=state):
            pass
