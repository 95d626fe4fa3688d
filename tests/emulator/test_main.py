"""The herald-emulator command: starts, announces its URL, obeys flags, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

from herald.emulator import EmulatorClient


async def test_cli_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "herald.emulator",
        "--port",
        "0",
        "--rate",
        "5",
        "--blocked",
        "1,2",
        "--error-ratio",
        "0.25",
        "--seed",
        "3",
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        match = re.search(r"emulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with EmulatorClient(match.group(1)) as client:
            config = await client.config()
        assert config.limits.rate == 5
        assert config.blocked == {1, 2}
        assert config.faults.error_ratio == 0.25
        assert config.seed == 3
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"emulator stopped" in rest


async def test_cli_rejects_bad_chat_ids() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "herald.emulator",
        "--blocked",
        "one,two",
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"expected comma-separated chat ids" in errors
