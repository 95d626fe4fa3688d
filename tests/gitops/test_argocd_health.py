"""The Argo CD health check, run in Lua 5.1 (the language of Argo CD's gopher-lua) on
Broadcasts whose status the operator's planner wrote, as Argo CD's own health_test.yaml
files are run: every listed input must give exactly the listed status and message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from herald.dev import samples
from herald.dev.kubectl import repo_root

HEALTH_DIR = repo_root() / samples.ARGOCD_HEALTH_DIR
SCRIPT = (HEALTH_DIR / "health.lua").read_text()
TESTS: list[dict[str, Any]] = yaml.safe_load((HEALTH_DIR / "health_test.yaml").read_text())["tests"]

# Argo CD opens only Lua's base, table and package libraries (and a reduced os) for health
# checks; the string library and string methods are absent. The script runs here in an
# environment as bare, so a call into the string library fails here as it would there.
_SANDBOX = """
local script, obj = ...
local chunk = assert(loadstring(script, "health.lua"))
setfenv(chunk, {
  obj = obj, table = table, ipairs = ipairs, pairs = pairs, next = next, type = type,
  tostring = tostring, tonumber = tonumber, error = error, assert = assert, pcall = pcall,
  select = select, unpack = unpack, setmetatable = setmetatable, getmetatable = getmetatable,
  rawget = rawget, rawset = rawset, rawequal = rawequal,
})
local strings = getmetatable("")
local methods = strings.__index
strings.__index = nil
local ok, result = pcall(chunk)
strings.__index = methods
if not ok then error(result, 0) end
return result
"""


def _sandboxed() -> tuple[lua51.LuaRuntime, Callable[..., Any]]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    run = runtime.execute("return function(...) " + _SANDBOX + " end")
    assert callable(run)
    return runtime, run


def health(obj: dict[str, Any]) -> dict[str, str]:
    runtime, run = _sandboxed()
    result = run(SCRIPT, runtime.table_from(obj, recursive=True))
    return {str(key): str(value) for key, value in result.items()}


def test_testdata_is_what_the_planner_writes() -> None:
    for path, expected in samples.render_argocd_testdata(repo_root()).items():
        assert path.read_text() == expected, f"{path} is stale: run python -m herald.dev.samples"


def test_every_sample_has_an_expected_health() -> None:
    listed = sorted(Path(t["inputPath"]).stem for t in TESTS)
    assert listed == sorted(s.name for s in samples.SAMPLES)


@pytest.mark.parametrize("case", TESTS, ids=[Path(t["inputPath"]).stem for t in TESTS])
def test_health(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((HEALTH_DIR / case["inputPath"]).read_text())
    assert health(obj) == {"message": "", **case["healthStatus"]}


def test_the_sandbox_has_no_string_library() -> None:
    runtime, run = _sandboxed()
    with pytest.raises(lua51.LuaError):
        run('return {status = ("x"):upper()}', runtime.table_from({}))
    with pytest.raises(lua51.LuaError):
        run("return {status = string.upper('x')}", runtime.table_from({}))


def test_a_status_without_conditions_is_progressing() -> None:
    """An operator older or newer than this script may write no conditions at all."""
    obj = samples.objects()["sending"]
    obj["status"] = {"observedGeneration": 1}
    assert health(obj)["status"] == "Progressing"
