"""A client for the emulator's control endpoints, for tests and the dev harness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import aiohttp

from herald.emulator.recording import RecordedMessage, Refusal, Summary
from herald.emulator.server import CONTROL_PREFIX
from herald.emulator.settings import EmulatorConfig

__all__ = ["EmulatorClient"]


class EmulatorClient:
    """``async with EmulatorClient(url) as emulator: await emulator.summary()``"""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def summary(self, *, token: str | None = None) -> Summary:
        return Summary.model_validate(await self._get("summary", token=token))

    async def messages(
        self, *, token: str | None = None, chat_id: int | None = None, method: str | None = None
    ) -> list[RecordedMessage]:
        body = await self._get("messages", token=token, chat_id=chat_id, method=method)
        return [RecordedMessage.model_validate(message) for message in body["messages"]]

    async def chat(self, *, token: str, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages the chat sees now (Bot API Message objects), oldest first: as
        sent and edited, without the deleted ones."""
        body = await self._get("chat", token=token, chat_id=chat_id)
        return list(body["messages"])

    async def refusals(
        self, *, token: str | None = None, status: int | None = None, method: str | None = None
    ) -> list[Refusal]:
        """Calls answered with an error, oldest first (429s carry their retry_after)."""
        body = await self._get("refusals", token=token, status=status, method=method)
        return [Refusal.model_validate(refusal) for refusal in body["refusals"]]

    async def config(self) -> EmulatorConfig:
        return EmulatorConfig.model_validate(await self._get("config"))

    async def configure(self, patch: Mapping[str, Any]) -> EmulatorConfig:
        """Merge `patch` into the emulator's config; see EmulatorConfig.patched."""
        return EmulatorConfig.model_validate(await self._post("config", dict(patch)))

    async def inject_updates(self, token: str, updates: Sequence[Mapping[str, Any]]) -> list[int]:
        """Queue updates for the bot's getUpdates; returns their assigned update_ids."""
        body = await self._post("updates", {"token": token, "updates": [dict(u) for u in updates]})
        return [int(update_id) for update_id in body["update_ids"]]

    async def reset(self) -> None:
        """Forget everything and return to the emulator's startup config."""
        await self._post("reset", {})

    async def _get(self, path: str, **query: Any) -> Any:
        params = {key: str(value) for key, value in query.items() if value is not None}
        session = self._ensure_session()
        async with session.get(f"{self.url}{CONTROL_PREFIX}/{path}", params=params) as response:
            return await _json(response)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        session = self._ensure_session()
        async with session.post(f"{self.url}{CONTROL_PREFIX}/{path}", json=body) as response:
            return await _json(response)

    def _ensure_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop, as aiohttp requires.
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


async def _json(response: aiohttp.ClientResponse) -> Any:
    body = await response.json()
    if response.status != 200:
        raise ValueError(f"emulator answered {response.status}: {body.get('error', body)}")
    return body
