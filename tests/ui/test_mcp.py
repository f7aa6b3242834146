"""The app as an MCP server: an agent lists the tools and calls them with the `mcp` client."""

from __future__ import annotations

import ast
import asyncio
from typing import Any

import pytest

from backends.scripted import ScriptedBackend, ScriptedReply
from tests.ui.conftest import running_app

mcp = pytest.importorskip("mcp", reason="pip install mcp (the MCP client and gradio's server)")
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402


async def _session_calls(url: str) -> tuple[dict, Any, str]:
    async with (
        streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _),
        mcp.ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        checked = await session.call_tool(
            "verify",
            {
                "prompt": "What is 15% of 240?",
                "gold": "",
                "response": "0.15 * 240 = 32\n\nFinal answer: 32",
            },
        )
        answered = await session.call_tool("chat", {"prompt": "Hi", "preset": "reasoning", "backend": "onnx"})
    return tools, ast.literal_eval(checked.content[0].text), answered.content[0].text


def test_chat_compare_and_verify_are_mcp_tools_an_agent_can_call() -> None:
    backend = ScriptedBackend(label="onnx", replies=[ScriptedReply(chunks=["Hello ", "there."])])
    with running_app(backend) as url:
        tools, verification, answer = asyncio.run(_session_calls(url))
    assert {"chat", "compare", "verify"} <= set(tools)
    assert "sympy" in tools["verify"].description
    assert set(tools["chat"].inputSchema["properties"]) == {"prompt", "preset", "backend", "settings"}
    assert "math" in tools["chat"].inputSchema["properties"]["preset"].get("description", "")
    assert verification["final"] == "incorrect"
    assert "Hello there." in answer and "scripted-model" in answer


def test_mcp_can_be_turned_off() -> None:
    import httpx

    with running_app(ScriptedBackend(label="onnx"), mcp=False) as url:
        assert httpx.get(url + "gradio_api/mcp/schema", timeout=10).status_code == 404
