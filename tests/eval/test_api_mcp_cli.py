"""The CLI, the /eval API and the eval MCP tool answer with the same JSON for the same setup."""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
from typing import Any

import pytest

from evals import cli
from tests.eval.conftest import registry_of
from tests.eval.test_service import SAMPLE, sample_lane
from tests.ui.conftest import running_app

mcp = pytest.importorskip("mcp", reason="pip install mcp (the MCP client and gradio's server)")
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

TIMED = {"ttft_s", "ttft_p50_s", "ttft_p95_s", "tokens_per_s", "seconds_per_correct", "wall_s", "how"}
"""Fields measured on the clock: they differ between two runs of the same setup."""


def untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMED and k != "frameworks"}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def cli_json(capsys: pytest.CaptureFixture[str], tmp_path) -> dict:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["math-word", "--lane", "sample", "--lane", "zero", "--limit", "10", "--json", "--quiet",
         "--no-probe", "--out", str(tmp_path)]
    )  # fmt: skip
    registry = registry_of(sample_lane("sample"), zero_lane())
    assert cli.run(args, registry=registry) == 0
    return json.loads(capsys.readouterr().out)


def zero_lane():
    from tests.eval.conftest import AnswerBackend

    return AnswerBackend("zero", lambda _p: "Final answer: 0")


async def mcp_call(url: str, arguments: dict) -> tuple[dict, Any]:
    async with (
        streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _),
        mcp.ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        result = await session.call_tool("eval", arguments)
    return tools, result


def test_cli_api_and_mcp_return_the_same_json(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from gradio_client import Client

    expected = cli_json(capsys, tmp_path)
    assert [lane["correct"] for lane in expected["lanes"]] == [
        sum(v == "correct" for _, v in SAMPLE),
        0,
    ]
    lane_keys = {"spec", "kind", "model", "correct", "total", "accuracy", "ci95", "ttft_p50_s", "ttft_p95_s",
                 "tokens_per_s", "tokens_per_correct", "errors"}  # fmt: skip
    assert lane_keys <= set(expected["lanes"][0])
    assert set(expected["items"][0]) == {"index", "prompt", "reference", "lanes"}
    assert set(expected["items"][0]["lanes"][0]) == {"answer", "verdict", "ttft_s", "completion_tokens"}

    arguments = {"lanes": ["sample", "zero"], "set_name": "math-word", "limit": 10}
    with running_app(sample_lane("sample"), zero_lane()) as url:
        from_api = Client(url, verbose=False).predict(**arguments, api_name="/eval")
        tools, from_mcp = asyncio.run(mcp_call(url, arguments))
    assert "verified correctness" in tools["eval"].description
    mcp_json = ast.literal_eval(from_mcp.content[0].text)  # gradio's MCP server sends the dict's repr
    assert untimed(from_api) == untimed(expected)
    assert untimed(mcp_json) == untimed(expected)


def test_recheck_regrades_the_stored_card_and_agrees(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    printed = cli_json(capsys, tmp_path)
    card = next(tmp_path.glob("eval-*.json"))
    assert cli.main(["--recheck", str(card)]) == 0
    table = capsys.readouterr().out
    correct = printed["lanes"][0]["correct"]
    assert f"| sample | 10 | {correct} | {correct} | yes |" in table
    assert cli.main(["--recheck", str(card.with_suffix(".jsonl"))]) == 0  # the log alone, as after a crash
    edited = json.loads(card.read_text())
    edited["cells"][0]["verdict"] = "incorrect" if edited["cells"][0]["verdict"] == "correct" else "correct"
    card.write_text(json.dumps(edited))
    assert cli.main(["--recheck", str(card)]) == 1  # a stored verdict that regrading contradicts
    assert "NO" in capsys.readouterr().out


def test_bad_input_is_refused_by_the_cli_with_the_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "b", "folder": "/etc"}\n')
    assert cli.main([str(bad), "--lane", "onnx", "--quiet"]) == 2
    assert 'line 2: unknown field "folder"' in capsys.readouterr().err
