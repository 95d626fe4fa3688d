"""The log formats and the redaction in front of them (pure: records in, lines out)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from herald.core import logs
from herald.core.settings import LogFormat, LogSettings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DSN = "postgresql://herald:s3cret-pw@db.example:5432/herald"


def record(
    message: str,
    *args: object,
    level: int = logging.INFO,
    exc: bool = False,
    **extra: object,
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionError(f"could not reach {DSN}")
        except ConnectionError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("herald.test", level, __file__, 1, message, args or None, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def json_line(made: logging.LogRecord) -> dict[str, object]:
    assert logs.Redact().filter(made)
    line = logs.json_formatter().format(made)
    assert "\n" not in line
    loaded: dict[str, object] = json.loads(line)
    return loaded


def text_line(made: logging.LogRecord) -> str:
    assert logs.Redact().filter(made)
    return logs.text_formatter().format(made)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (f"token {TOKEN} leaked", "token 123456789:*** leaked"),
        (f"https://api.telegram.org/bot{TOKEN}/sendMessage", "bot123456789:***/sendMessage"),
        (DSN, "postgresql://herald:***@db.example:5432/herald"),
        ("nats://user:pa55@nats:4222", "nats://user:***@nats:4222"),
        ("host=db user=herald password=hunter2 dbname=x", "password=*** dbname=x"),
        ("password = 'two words'", "password = ***"),
    ],
    ids=["token", "token-in-url", "dsn", "nats-url", "libpq-keywords", "quoted-keyword"],
)
def test_redact_masks_secrets(raw: str, masked: str) -> None:
    out = logs.redact(raw)
    assert masked in out
    for secret in ("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "s3cret-pw", "pa55", "hunter2", "two"):
        assert secret not in out


@pytest.mark.parametrize(
    "harmless",
    [
        "Broadcast default/sale: 12:30 recipients",
        "chat 123456:short is not a token",
        "http://127.0.0.1:9101/metrics",
        "postgresql://herald@127.0.0.1:5432/herald",
        "ratio 3:1, 1000:2000",
    ],
    ids=["time", "short-secret", "port", "dsn-without-password", "ratios"],
)
def test_redact_leaves_ordinary_text_alone(harmless: str) -> None:
    assert logs.redact(harmless) == harmless


def test_json_line_has_the_fixed_fields() -> None:
    line = json_line(record("Sender replicas set to %d.", 3, level=logging.WARNING))
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["level"] == "WARNING"
    assert line["logger"] == "herald.test"
    assert line["message"] == "Sender replicas set to 3."
    assert str(line["time"]).endswith("Z")
    assert "namespace" not in line


def test_json_secret_in_arguments_is_masked() -> None:
    line = json_line(record("connecting to %s with %s", DSN, TOKEN))
    assert line["message"] == (
        "connecting to postgresql://herald:***@db.example:5432/herald with 123456789:***"
    )


def test_json_traceback_is_masked() -> None:
    line = json_line(record("failed", level=logging.ERROR, exc=True))
    trace = str(line["exc_info"])
    assert "ConnectionError" in trace
    assert "s3cret-pw" not in trace
    assert "herald:***@db.example" in trace


def test_text_traceback_is_masked() -> None:
    line = text_line(record("failed", level=logging.ERROR, exc=True))
    assert "Traceback" in line
    assert "s3cret-pw" not in line


def test_extra_fields_are_kept_and_masked() -> None:
    line = json_line(record("done", batches=4, url=DSN))
    assert line["batches"] == 4
    assert line["url"] == "postgresql://herald:***@db.example:5432/herald"


def test_broadcast_from_extra() -> None:
    made = record("queued", namespace="marketing", broadcast="black-friday")
    line = json_line(made)
    assert (line["namespace"], line["name"]) == ("marketing", "black-friday")
    assert "broadcast" not in line


def test_broadcast_from_kopf_object_reference() -> None:
    ref = {"apiVersion": "herald.dev/v1alpha1", "kind": "Broadcast", "namespace": "m", "name": "b"}
    line = json_line(record("Handler succeeded.", k8s_ref=ref, k8s_skip=True))
    assert (line["namespace"], line["name"]) == ("m", "b")
    assert "k8s_ref" not in line
    assert "k8s_skip" not in line


def test_broadcast_from_context_follows_tasks() -> None:
    async def log_in_task() -> dict[str, object]:
        return json_line(record("claimed"))

    async def main() -> tuple[dict[str, object], dict[str, object]]:
        with logs.broadcast("marketing", "sale"):
            inside = await asyncio.create_task(log_in_task())
        return inside, json_line(record("outside"))

    inside, outside = asyncio.run(main())
    assert (inside["namespace"], inside["name"]) == ("marketing", "sale")
    assert "namespace" not in outside


def test_text_line_names_the_broadcast() -> None:
    with logs.broadcast("marketing", "sale"):
        line = text_line(record("Paused."))
    assert line.endswith(" INFO herald.test: [marketing/sale] Paused.")
    assert line.split(" ")[1].endswith("Z")


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    floors = {name: logging.getLogger(name).level for name in ("aiogram.event", "kopf", "x.y")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, floor in floors.items():
        logging.getLogger(name).setLevel(floor)


def test_configure_installs_one_redacting_json_handler(
    root_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure(LogSettings(format=LogFormat.JSON, level="debug"), floors={"x.y": logging.ERROR})
    logs.configure(LogSettings(format=LogFormat.JSON, level="debug"), floors={"x.y": logging.ERROR})
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert root.level == logging.DEBUG
    assert logging.getLogger("aiogram.event").level == logging.WARNING
    assert logging.getLogger("kopf").level == logging.INFO
    assert logging.getLogger("x.y").level == logging.ERROR
    logging.getLogger("herald.anything").debug("token %s", TOKEN)
    logging.getLogger("aiogram.event").info("Update id=1 text=secret offer")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["token 123456789:***"]


def test_log_settings_reject_unknown_levels() -> None:
    with pytest.raises(ValueError, match="level"):
        LogSettings(level="loud")
    with pytest.raises(ValueError, match="format"):
        LogSettings.model_validate({"format": "xml"})
