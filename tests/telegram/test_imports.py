"""aiogram imported with its models built on first use builds every one of them, and those
Herald calls or reads the same as the eager import does: the same JSON schema, the same
validated update.

Each side runs in a fresh interpreter, since a process imports aiogram once."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

# What the sender and the bot send and read. JSON schemas of all ~630 models would take a
# minute; every model is built on both sides all the same.
USED = [
    "aiogram.methods.copy_message.CopyMessage",
    "aiogram.methods.delete_message.DeleteMessage",
    "aiogram.methods.delete_messages.DeleteMessages",
    "aiogram.methods.edit_message_caption.EditMessageCaption",
    "aiogram.methods.edit_message_text.EditMessageText",
    "aiogram.methods.get_updates.GetUpdates",
    "aiogram.methods.send_animation.SendAnimation",
    "aiogram.methods.send_audio.SendAudio",
    "aiogram.methods.send_document.SendDocument",
    "aiogram.methods.send_media_group.SendMediaGroup",
    "aiogram.methods.send_message.SendMessage",
    "aiogram.methods.send_photo.SendPhoto",
    "aiogram.methods.send_video.SendVideo",
    "aiogram.methods.send_voice.SendVoice",
    "aiogram.types.callback_query.CallbackQuery",
    "aiogram.types.chat_member_updated.ChatMemberUpdated",
    "aiogram.types.message.Message",
    "aiogram.types.update.Update",
]

# Run inside a few function frames: pydantic's lazy build reads the namespace five frames up,
# which code running under an event loop always has.
PROGRAM = """
import json, sys
{imports}
USED = {used!r}
import aiogram
from aiogram.methods.base import TelegramMethod
from aiogram.types import Update
from aiogram.types.base import TelegramObject
from pydantic.json_schema import GenerateJsonSchema

class Files(GenerateJsonSchema):
    def is_instance_schema(self, schema):  # an upload: InputFile has no JSON schema
        return {{"instanceOf": schema["cls"].__qualname__}}

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

def describe(depth):
    if depth:
        return describe(depth - 1)
    deferred = not aiogram.types.Message.__pydantic_complete__
    schemas = {{}}
    for cls in {{*subclasses(TelegramObject), *subclasses(TelegramMethod)}}:
        if cls.__pydantic_generic_metadata__["parameters"]:
            continue
        name = f"{{cls.__module__}}.{{cls.__qualname__}}"
        try:
            cls.__pydantic_validator__.validate_python  # built here when deferred
            built = cls.model_json_schema(schema_generator=Files) if name in USED else "built"
            schemas[name] = built
        except Exception as error:
            schemas[name] = f"{{type(error).__name__}}: {{error}}"
        if not cls.__pydantic_complete__:
            schemas[name] = "not built"
    update = Update.model_validate(json.loads(sys.argv[1]))
    return {{
        "deferred": deferred,
        "schemas": schemas,
        "update": update.model_dump(mode="json", exclude_none=True),
    }}

print(json.dumps(describe(8)))
"""

UPDATE = {
    "update_id": 7,
    "message": {
        "message_id": 3,
        "date": 1_700_000_000,
        "chat": {"id": 42, "type": "private", "first_name": "Ann"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
        "text": "/start promo",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Yes", "callback_data": "v:1"}, {"text": "Site", "url": "https://x.io"}]
            ]
        },
    },
}


def run(imports: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(imports=imports, used=USED), json.dumps(UPDATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def eager() -> dict[str, Any]:
    return run("")


@pytest.fixture(scope="module")
def deferred() -> dict[str, Any]:
    return run("from herald.telegram.imports import defer_model_builds; defer_model_builds()")


def test_the_deferred_import_leaves_the_models_unbuilt(
    eager: dict[str, Any], deferred: dict[str, Any]
) -> None:
    assert deferred["deferred"] is True
    assert eager["deferred"] is False


def test_every_model_builds_on_first_use_as_the_eager_import_builds_it(
    eager: dict[str, Any], deferred: dict[str, Any]
) -> None:
    assert len(eager["schemas"]) > 400
    assert sorted(deferred["schemas"]) == sorted(eager["schemas"])
    differing = [n for n, s in eager["schemas"].items() if deferred["schemas"][n] != s]
    assert differing == []
    assert "not built" not in eager["schemas"].values()
    assert all(isinstance(eager["schemas"][name], dict) for name in USED)


def test_an_update_validates_the_same(eager: dict[str, Any], deferred: dict[str, Any]) -> None:
    assert deferred["update"] == eager["update"]
    assert deferred["update"]["message"]["reply_markup"]["inline_keyboard"][0][1]["url"] == (
        "https://x.io"
    )


def test_the_sender_and_the_bot_import_aiogram_deferred() -> None:
    for package in ("herald.sender", "herald.bot"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import {package}, aiogram.types; "
                "print(aiogram.types.Message.__pydantic_complete__)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert done.stdout.strip() == "False", package
