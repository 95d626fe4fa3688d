"""The Bot API's behaviour, without HTTP: what each method answers, which limits and faults
apply, and what gets recorded. The aiohttp handlers only translate to and from this."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import random
import re
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from herald.core import markups
from herald.emulator import payloads
from herald.emulator.errors import ApiError
from herald.emulator.limits import RateLimiter
from herald.emulator.recording import SENDING_METHODS, RecordedMessage, Recorder, Refusal
from herald.emulator.settings import EmulatorConfig

__all__ = ["BAD_GATEWAY_PAGE", "ApiError", "EmulatorState", "Reply", "is_token"]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway"}
# What nginx answers when the upstream is down: not JSON, as a proxy in front of the Bot API
# (or Telegram's own front end) answers.
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# Media whose caption may sit above it (show_caption_above_media); others ignore the flag.
_CAPTION_ABOVE = frozenset({"photo", "video", "animation"})
_OTHER_METHODS = (
    "getMe",
    "getUpdates",
    "editMessageText",
    "editMessageCaption",
    "deleteMessage",
    "deleteMessages",
    "answerCallbackQuery",
    "setMyCommands",
    "setWebhook",
    "deleteWebhook",
    "close",
    "logOut",
)
_ABOVE = "show_caption_above_media"
# Telegram lets a bot delete its own messages in private chats for 48 hours.
DELETE_WINDOW_SECONDS = 48 * 3600
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
# Telegram's method names are case-insensitive.
_METHODS = {name.lower(): name for name in (*SENDING_METHODS, *_OTHER_METHODS)}


def is_token(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


@dataclass(frozen=True)
class Reply:
    """An answer to one Bot API request; `dropped` means the server must not send it."""

    status: int
    body: dict[str, Any]
    dropped: bool = False
    page: str | None = None  # answered as text/html instead of the JSON body

    @classmethod
    def ok(cls, result: Any, *, dropped: bool = False) -> Reply:
        return cls(200, {"ok": True, "result": result}, dropped)

    @classmethod
    def error(cls, error: ApiError) -> Reply:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.status,
            "description": error.description,
        }
        if error.retry_after is not None:
            body["parameters"] = {"retry_after": error.retry_after}
        return cls(error.status, body, page=error.page)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EmulatorState:
    """Everything the emulator knows. `clock` (monotonic seconds) drives the limits, the
    storm and the recorded times, so tests can run them on a fake clock."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._initial = config or EmulatorConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._arrivals: dict[str, asyncio.Event] = {}
        self.reset()

    # --- control ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything and return to the config the emulator started with."""
        self.config = self._initial
        self.recorder = Recorder()
        self._limiter = RateLimiter(self.config.limits)
        # Reproducible fault draws, not secrets.
        self._random = random.Random(self.config.seed)  # noqa: S311
        self._storm_until = self._storm_deadline()
        self._message_ids: dict[tuple[str, int], itertools.count[int]] = {}
        self._seen: set[tuple[str, int, int]] = set()  # (token, chat, message) copyMessage finds
        # What each chat sees now: the bot's messages as sent and edited, without the deleted
        # ones, each with the emulator-clock time it was sent (the 48-hour delete window).
        self._chats: dict[tuple[str, int, int], tuple[float, dict[str, Any]]] = {}
        self._deleted: set[tuple[str, int, int]] = set()
        self._file_ids = itertools.count(1)
        self._media_groups = itertools.count(1)
        self._updates: dict[str, list[dict[str, Any]]] = {}
        self._update_ids: dict[str, itertools.count[int]] = {}
        self.wake_pollers()

    def configure(self, patch: Mapping[str, Any]) -> EmulatorConfig:
        """Merge `patch` into the config (see EmulatorConfig.patched). Setting a storm
        starts it now; setting a seed restarts the random draws."""
        self.config = self.config.patched(patch)
        self._limiter.limits = self.config.limits
        faults = patch.get("faults")
        if isinstance(faults, Mapping) and "storm" in faults:
            self._storm_until = self._storm_deadline()
        if "seed" in patch:
            self._random.seed(self.config.seed)
        return self.config

    def _storm_deadline(self) -> float:
        storm = self.config.faults.storm
        return self._clock() + storm.seconds if storm else float("-inf")

    def latency(self) -> float:
        """Seconds to hold the next Bot API request, as configured."""
        faults = self.config.faults
        jitter = self._random.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0.0
        return (faults.latency_ms + jitter) / 1000

    def inject_updates(self, token: str, updates: Iterable[Mapping[str, Any]]) -> list[int]:
        """Queue updates for getUpdates, numbering them; a given update_id is overwritten."""
        if not is_token(token):
            raise ValueError(f"not a bot token: {token!r}")
        queue = self._updates.setdefault(token, [])
        ids = self._update_ids.setdefault(token, itertools.count(1))
        numbered = [{**update, "update_id": next(ids)} for update in updates]
        self._seen.update((token, *message) for message in _messages_of(numbered))
        queue.extend(numbered)
        if (event := self._arrivals.pop(token, None)) is not None:
            event.set()
        return [update["update_id"] for update in numbered]

    def wake_pollers(self) -> None:
        """End every pending long poll now (on reset and shutdown)."""
        for event in self._arrivals.values():
            event.set()
        self._arrivals.clear()

    # --- the Bot API -----------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock, as it records arrivals and measures limits."""
        return self._clock()

    async def handle(
        self, token: str, method: str, params: Mapping[str, Any], *, arrived: float | None = None
    ) -> Reply:
        """Answer one request; only getUpdates may wait (long polling)."""
        if is_token(token) and self._known(token) and method.lower() == "getupdates":
            try:
                return Reply.ok(await self._poll(token, params))
            except ApiError as error:
                return self._refuse(token, "getUpdates", params, error)
        return self.call(token, method, params, arrived=arrived)

    def call(
        self, token: str, method: str, params: Mapping[str, Any], *, arrived: float | None = None
    ) -> Reply:
        """Answer one request at once; getUpdates here never waits. `arrived` (the clock's
        reading when it came in; now if None) is the time its limits and record use."""
        name = _METHODS.get(method.lower())
        try:
            if not is_token(token) or not self._known(token):
                raise ApiError(401, "Unauthorized")
            if name is None:
                raise ApiError(404, "Not Found")
            if name in SENDING_METHODS:
                return self._send(
                    token, name, params, self._clock() if arrived is None else arrived
                )
            return Reply.ok(self._answer(token, name, params))
        except ApiError as error:
            return self._refuse(token, name or method, params, error)

    def _known(self, token: str) -> bool:
        """Whether Telegram would know the token: any well-formed one unless the config
        lists the bots that exist."""
        bots = self.config.bots
        return bots is None or token in bots

    def _refuse(self, token: str, method: str, params: Mapping[str, Any], error: ApiError) -> Reply:
        chat_id = params.get("chat_id")
        self.recorder.refuse(
            Refusal(
                token=token,
                method=method,
                chat_id=chat_id
                if isinstance(chat_id, int) and not isinstance(chat_id, bool)
                else None,
                status=error.status,
                description=error.description,
                retry_after=error.retry_after,
                monotonic=self._clock(),
                wall=self._wall_clock(),
            )
        )
        return Reply.error(error)

    def _send(self, token: str, method: str, params: Mapping[str, Any], now: float) -> Reply:
        faults = self.config.faults
        if faults.storm and now < self._storm_until:
            raise _flood(faults.storm.retry_after)
        if faults.error_ratio and self._random.random() < faults.error_ratio:
            status = self._random.choice(tuple(_SERVER_ERRORS))
            raise ApiError(status, _SERVER_ERRORS[status])
        if faults.bad_gateway_ratio and self._random.random() < faults.bad_gateway_ratio:
            raise ApiError(502, "Bad Gateway", page=BAD_GATEWAY_PAGE)
        chat = self._chat(params, token)
        contents = self._compose(method, params, chat)
        if method == "copyMessage":
            self._source(token, params)
        paid = _flag(params, "allow_paid_broadcast")
        retry_after = self._limiter.retry_after(token, chat["id"], paid=paid, now=now)
        if retry_after is not None:
            raise _flood(retry_after)
        self._limiter.accept(token, chat["id"], now)
        messages = [self._message(token, chat, content) for content in contents]
        dropped = bool(faults.drop_ratio) and self._random.random() < faults.drop_ratio
        message_id = messages[0]["message_id"]
        self._record(
            token,
            method,
            params,
            chat_id=chat["id"],
            message_id=message_id,
            now=now,
            dropped=dropped,
        )
        if method == "copyMessage":
            return Reply.ok({"message_id": messages[0]["message_id"]}, dropped=dropped)
        if method == "sendMediaGroup":
            return Reply.ok(messages, dropped=dropped)
        return Reply.ok(messages[0], dropped=dropped)

    def _answer(self, token: str, method: str, params: Mapping[str, Any]) -> Any:
        if method == "getMe":
            bots = self.config.bots
            return _bot_user(token, bots.get(token) if bots is not None else None)
        if method == "getUpdates":
            return self._pending(token, params)
        if method == "editMessageText":
            return self._edit_text(token, params)
        if method == "editMessageCaption":
            return self._edit_caption(token, params)
        if method == "deleteMessage":
            return self._delete(token, params)
        if method == "deleteMessages":
            return self._delete_all(token, params)
        if method == "answerCallbackQuery":
            if not params.get("callback_query_id"):
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                )
            self._record(token, method, params)
        elif method == "setMyCommands":
            if not isinstance(params.get("commands"), list):
                raise ApiError(400, 'Bad Request: parameter "commands" is required')
            self._record(token, method, params)
        elif method == "setWebhook":
            # Recorded, not called back: tests post the updates to the webhook themselves.
            if not str(params.get("url") or "").startswith("https://"):
                raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
            self._record(token, method, params)
        return True  # deleteWebhook, close, logOut: nothing to do here

    def _record(
        self,
        token: str,
        method: str,
        params: Mapping[str, Any],
        *,
        chat_id: int | None = None,
        message_id: int | None = None,
        now: float | None = None,
        dropped: bool = False,
    ) -> None:
        self.recorder.record(
            RecordedMessage(
                token=token,
                method=method,
                chat_id=chat_id,
                message_id=message_id,
                payload=dict(params),
                monotonic=self._clock() if now is None else now,
                wall=self._wall_clock(),
                dropped=dropped,
            )
        )

    # --- chats and messages ----------------------------------------------------------

    def _chat(self, params: Mapping[str, Any], token: str) -> dict[str, Any]:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = _chat(raw)
        chat_id = chat["id"]
        if chat_id in self.config.not_found:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.config.blocked or chat_id in self.config.blocked_by.get(token, ()):
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.config.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        return chat

    def _message(self, token: str, chat: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        ids = self._message_ids.setdefault((token, chat["id"]), itertools.count(1))
        message_id = next(ids)
        self._seen.add((token, chat["id"], message_id))
        message = {
            "message_id": message_id,
            "date": int(self._wall_clock().timestamp()),
            "chat": chat,
            "from": _bot_user(token),
            **content,
        }
        self._chats[token, chat["id"], message_id] = (self._clock(), message)
        return message

    def _source(self, token: str, params: Mapping[str, Any]) -> None:
        """Refuses a copyMessage whose source the bot cannot read, in Telegram's words: the
        same "chat not found" as for an unknown recipient when the source chat is unknown."""
        source = _chat(params.get("from_chat_id"))["id"]
        if source in self.config.not_found:
            raise ApiError(400, "Bad Request: chat not found")
        message_id = _int(params, "message_id")
        known = (token, source, message_id) in self._seen
        if not known and message_id not in self.config.posts.get(source, ()):
            raise ApiError(400, "Bad Request: message to copy not found")

    def _compose(
        self, method: str, params: Mapping[str, Any], chat: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """What each message of a send will contain; refuses what Telegram would refuse."""
        content: dict[str, Any]
        effect = payloads.message_effect(params, chat["type"])
        extras = {"effect_id": effect} if effect is not None else {}
        if method == "sendMediaGroup":
            # The Bot API reads no reply_markup for an album: a keyboard sent along is dropped.
            return [content | extras for content in self._media_group(params)]
        markup = payloads.reply_markup(params.get("reply_markup"))
        if method == "sendMessage":
            content = {"text": _text(params)}
            preview = payloads.link_preview_options(params.get("link_preview_options"))
            if preview is not None:
                content["link_preview_options"] = preview
        elif method == "copyMessage":
            if params.get("from_chat_id") in (None, ""):
                raise ApiError(400, "Bad Request: from_chat_id is empty")
            if _int(params, "message_id") is None:
                raise ApiError(400, "Bad Request: message to copy not found")
            content = _caption(params)
        else:
            kind = method.removeprefix("send").lower()
            content = {**self._media(kind, params.get(kind), params), **_caption(params)}
            if kind in _CAPTION_ABOVE and content.get("caption") and _flag(params, _ABOVE):
                content[_ABOVE] = True
        if markup is not None:
            content["reply_markup"] = markup
        return [content | extras]

    def _media_group(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items = payloads.album_items(params.get("media"))
        group_id = str(next(self._media_groups))
        contents = []
        for kind, item in items:
            media = self._media(kind, item.get("media"), params)
            content = {**media, **_caption(item), "media_group_id": group_id}
            if kind in _CAPTION_ABOVE and content.get("caption") and _flag(item, _ABOVE):
                content[_ABOVE] = True
            contents.append(content)
        return contents

    def _media(self, kind: str, value: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
            if not isinstance(value, Mapping):
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        file: dict[str, Any]
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            # A file_id Telegram already knows: echoed back, as Telegram does.
            file = {"file_id": value, "file_unique_id": _unique_id(value)}
        else:
            number = next(self._file_ids)
            file = {"file_id": f"emu-{kind}-{number}", "file_unique_id": f"emu-u{number}"}
        if kind == "photo":
            return {"photo": [{**file, "width": 1280, "height": 720}]}
        if kind in ("video", "animation"):
            file |= {"width": 1280, "height": 720, "duration": 1}
        elif kind == "audio":
            file |= {"duration": 1, "mime_type": "audio/mpeg"}
        elif kind == "voice":
            file |= {"duration": 1, "mime_type": "audio/ogg"}
        return {kind: file}

    def _edit_text(self, token: str, params: Mapping[str, Any]) -> dict[str, Any] | bool:
        text = _text(params)
        if params.get("inline_message_id"):
            self._record(token, "editMessageText", params)
            return True
        chat = self._chat(params, token)
        message_id = _int(params, "message_id")
        key = (token, chat["id"], message_id or 0)
        if message_id is None or key in self._deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        kept = self._chats.get(key)
        if kept is not None and "text" not in kept[1]:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        change = {"text": text, **self._markup_of(params)}
        self._edit(key, kept, change)
        self._record(token, "editMessageText", params, chat_id=chat["id"], message_id=message_id)
        now = int(self._wall_clock().timestamp())
        message = {"message_id": message_id, "date": now, "edit_date": now, "chat": chat}
        return message | {"from": _bot_user(token), **change}

    def _edit_caption(self, token: str, params: Mapping[str, Any]) -> dict[str, Any]:
        chat = self._chat(params, token)
        message_id = _int(params, "message_id")
        key = (token, chat["id"], message_id or 0)
        kept = self._chats.get(key)
        if message_id is None or kept is None or key in self._deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        if "text" in kept[1]:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        change = {**_caption(params), **self._markup_of(params)}
        self._edit(key, kept, change)
        self._record(token, "editMessageCaption", params, chat_id=chat["id"], message_id=message_id)
        return {**self._chats[key][1], "edit_date": int(self._wall_clock().timestamp())}

    def _markup_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        # As Telegram does: an edit without reply_markup removes the inline keyboard.
        markup = payloads.reply_markup(params.get("reply_markup"))
        return {"reply_markup": markup} if markup is not None else {}

    def _edit(
        self,
        key: tuple[str, int, int],
        kept: tuple[float, dict[str, Any]] | None,
        change: dict[str, Any],
    ) -> None:
        if kept is None:
            return  # a message the emulator did not send (an update's): nothing to keep
        sent, message = kept
        body = {k: v for k, v in message.items() if k not in ("text", "caption", "reply_markup")}
        edited = {**body, **change}
        if edited == message:
            raise ApiError(400, _NOT_MODIFIED)
        self._chats[key] = (sent, edited)

    def _delete(self, token: str, params: Mapping[str, Any]) -> bool:
        chat = self._chat(params, token)
        message_id = _int(params, "message_id")
        key = (token, chat["id"], message_id or 0)
        kept = self._chats.get(key)
        if message_id is None or kept is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        if chat["id"] > 0 and self._clock() - kept[0] > DELETE_WINDOW_SECONDS:
            raise ApiError(400, "Bad Request: message can't be deleted for everyone")
        del self._chats[key]
        self._deleted.add(key)
        self._record(token, "deleteMessage", params, chat_id=chat["id"], message_id=message_id)
        return True

    def _delete_all(self, token: str, params: Mapping[str, Any]) -> bool:
        # As Telegram does: messages not found are skipped; one too old refuses the call.
        chat = self._chat(params, token)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise ApiError(400, "Bad Request: message identifiers are not specified")
        keys = [(token, chat["id"], int(each)) for each in ids]
        now = self._clock()
        for key in keys:
            kept = self._chats.get(key)
            if kept is not None and chat["id"] > 0 and now - kept[0] > DELETE_WINDOW_SECONDS:
                raise ApiError(400, "Bad Request: message can't be deleted for everyone")
        for key in keys:
            if self._chats.pop(key, None) is not None:
                self._deleted.add(key)
        self._record(token, "deleteMessages", params, chat_id=chat["id"])
        return True

    def chat(self, token: str, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages chat `chat_id` sees now, oldest first: as sent and edited,
        without the deleted ones."""
        return [
            message
            for (owner, chat, _), (_, message) in sorted(self._chats.items())
            if owner == token and chat == chat_id
        ]

    # --- updates ---------------------------------------------------------------------

    def _pending(self, token: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Updates from `offset` on, forgetting earlier ones (Telegram's confirmation)."""
        offset = _int(params, "offset") or 0
        limit = min(max(_int(params, "limit") or 100, 1), 100)
        queue = self._updates.get(token, [])
        if offset > 0:
            queue[:] = [update for update in queue if update["update_id"] >= offset]
        elif offset < 0:
            queue[:] = queue[offset:]
        return queue[:limit]

    async def _poll(self, token: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        updates = self._pending(token, params)
        timeout = _int(params, "timeout") or 0
        if updates or timeout <= 0:
            return updates
        event = self._arrivals.setdefault(token, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self._pending(token, params)


# --- parameters ----------------------------------------------------------------------


def _int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ApiError(400, f'Bad Request: field "{key}" must be of type Integer')


def _flood(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


def _flag(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _parse(text: str, parse_mode: Any) -> str:
    mode = str(parse_mode) if parse_mode else None
    if mode and mode.lower() not in markups.PARSE_MODES:
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    try:
        return markups.parse(text, mode)
    except markups.MarkupError as error:
        raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None


def _text(params: Mapping[str, Any]) -> str:
    text = params.get("text")
    plain = "" if text is None else _parse(str(text), params.get("parse_mode"))
    if not plain.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(plain) > TEXT_LIMIT:
        raise ApiError(400, "Bad Request: message is too long")
    return plain


def _caption(params: Mapping[str, Any]) -> dict[str, Any]:
    caption = params.get("caption")
    if caption is None or caption == "":
        return {}
    plain = _parse(str(caption), params.get("parse_mode"))
    if len(plain) > CAPTION_LIMIT:
        raise ApiError(400, "Bad Request: message caption is too long")
    return {"caption": plain}


def _chat(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str) and raw.startswith("@") and len(raw) > 1:
        # Public channels are addressed by username; any stable id will do.
        chat_id = -1_000_000_000_000 - zlib.crc32(raw.lower().encode())
        return {"id": chat_id, "type": "channel", "title": raw[1:], "username": raw[1:]}
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ApiError(400, "Bad Request: chat not found")
    if isinstance(raw, str) and not raw.lstrip("-").isdigit():
        raise ApiError(400, "Bad Request: chat not found")
    chat_id = int(raw)
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}


def _bot_user(token: str, username: str | None = None) -> dict[str, Any]:
    bot_id = int(token.partition(":")[0])
    return {
        "id": bot_id,
        "is_bot": True,
        "first_name": "Herald Emulator",
        "username": username or f"herald_emulator_{bot_id}_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _messages_of(updates: Iterable[Mapping[str, Any]]) -> Iterable[tuple[int, int]]:
    """(chat id, message id) of each message in `updates` (message, channel_post, ...)."""
    for update in updates:
        for value in update.values():
            if not isinstance(value, Mapping):
                continue
            chat, message_id = value.get("chat"), value.get("message_id")
            chat_id = chat.get("id") if isinstance(chat, Mapping) else None
            if isinstance(chat_id, int) and isinstance(message_id, int):
                yield chat_id, message_id


def _unique_id(file_id: str) -> str:
    return "emu-" + hashlib.sha256(file_id.encode()).hexdigest()[:16]
