"""The Dockerfile, read with the official BuildKit parser (the `dockerfile` package): it
cannot be built here (no container runtime), so its promises are checked from its text."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

from herald.dev.kubectl import repo_root

ROOT = repo_root()
# An exact Python release and Debian suite, and the content digest that pins them.
PINNED = re.compile(r"^python:\d+\.\d+\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}$")
# The parser's Command is a named tuple the package ships without type hints.
Commands = tuple[Any, ...]
SECRET_WORDS = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE|DSN", re.I)


@pytest.fixture(scope="module")
def commands() -> Commands:
    parsed: Commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    return parsed


def build_args(commands: Commands) -> dict[str, str]:
    """ARG defaults declared before the first FROM: the ones FROM lines may use."""
    defaults: dict[str, str] = {}
    for command in commands:
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, _, value = command.value[0].partition("=")
            defaults[name] = value
    return defaults


def stages(commands: Commands) -> list[list[Any]]:
    found: list[list[Any]] = []
    for command in commands:
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def test_every_stage_starts_from_a_base_pinned_by_version_and_digest(commands: Commands) -> None:
    args = build_args(commands)
    bases = []
    for stage in stages(commands):
        image = stage[0].value[0]
        for name, value in args.items():
            image = image.replace(f"${{{name}}}", value).replace(f"${name}", value)
        bases.append(image)
    assert bases, "no FROM"
    for image in bases:
        assert PINNED.match(image), f"{image} is not pinned to a release and a digest"


def test_the_wheel_is_built_in_one_stage_and_installed_into_a_venv_in_another(
    commands: Commands,
) -> None:
    build, *_, final = stages(commands)
    assert len(stages(commands)) >= 2
    build_name = build[0].value[-1]
    assert any(c.cmd == "RUN" and "pip wheel" in c.value[0] for c in build)
    installs = [c for c in final if c.cmd == "RUN" and "pip install" in c.value[0]]
    assert installs, "the final stage installs nothing"
    assert any(f"from={build_name}" in flag for c in installs for flag in c.flags)
    assert "venv" in installs[0].value[0]
    from_context = [
        c.original
        for c in final
        if c.cmd in {"COPY", "ADD"} and not any(f.startswith("--from=") for f in c.flags)
    ]
    assert not from_context, f"the final stage copies from the build context: {from_context}"


def test_the_image_runs_as_a_numeric_non_root_user(commands: Commands) -> None:
    final = stages(commands)[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]


def test_the_chart_runs_the_same_uid_as_the_image(commands: Commands, chart: Path) -> None:
    user = next(c.value[0] for c in reversed(commands) if c.cmd == "USER")
    values = yaml.safe_load((chart / "values.yaml").read_text())
    context = values["podSecurityContext"]
    assert user == f"{context['runAsUser']}:{context['runAsGroup']}"


def test_no_env_or_arg_carries_a_secret(commands: Commands) -> None:
    for command in commands:
        if command.cmd == "ENV":
            names = command.value[::2]
        elif command.cmd == "ARG":
            names = tuple(value.partition("=")[0] for value in command.value)
        else:
            continue
        for name in names:
            assert not SECRET_WORDS.search(name), f"line {command.start_line}: {name}"
        assert "://" not in command.original or "@" not in command.original.split("://")[1], (
            f"line {command.start_line} looks like a URL with credentials"
        )


def test_the_entrypoint_is_a_console_script_and_every_component_has_one(commands: Commands) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    scripts = set(project["scripts"])
    entrypoints = [c for c in commands if c.cmd == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].json, "ENTRYPOINT must be exec form"
    assert entrypoints[-1].value[0] in scripts
    assert {"herald-operator", "herald-sender", "herald-bot", "herald-api"} <= scripts
    # The programs the chart runs, one per component, are all in the image.
    values = yaml.safe_load((ROOT / "charts" / "herald" / "values.yaml").read_text())
    programs = {values[c]["command"][0] for c in ("operator", "sender", "api", "bot")}
    assert programs <= scripts, programs - scripts


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out: a pattern matches it or a parent folder
    (fnmatch's `*` also crosses `/`, which only makes this stricter than Docker's)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


def test_the_build_context_holds_every_package_folder(commands: Commands) -> None:
    """The build stage copies the context, and .dockerignore lets through every folder that
    pyproject maps into `herald`, whatever was added since."""
    build = stages(commands)[0]
    assert any(c.cmd == "COPY" and c.value == (".", ".") for c in build)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    needed = {folder.rstrip("/") for folder in setuptools["package-dir"].values()}
    needed |= {"pyproject.toml", "README.md"}
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions make this check unsound"
    assert ".venv" in patterns and ".git" in patterns
    excluded = {path for path in needed if ignored(path, patterns)}
    assert not excluded, f".dockerignore excludes {excluded}"
