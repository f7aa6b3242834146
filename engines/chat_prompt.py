"""What every in-process engine does to a chat before its template: messages as template input
(earlier tool calls replayed as the text the model would have written), the tools described in
the system message, and how much of a new prompt an earlier one already holds (KV reuse)."""

from __future__ import annotations

import json

from backends.base import ChatRequest, Message
from engines.onnx_tools import tools_system_text


def message_json(message: Message) -> dict[str, str]:
    content = message.content
    if message.tool_calls:  # replay earlier calls as the text the model would have written
        calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
        content = (content + "\n" if content else "") + "<tool_call>" + json.dumps(calls) + "</tool_call>"
    return {"role": message.role, "content": content}


def template_messages(request: ChatRequest, *, tools_key: bool = False) -> list[dict[str, str]]:
    """The request's messages for a chat template, with the offered tools described in the system
    message; ``tools_key`` also puts them under the system message's `tools` key (Phi-4's
    template reads it there)."""
    messages = [message_json(m) for m in request.messages]
    if not request.tools or request.tool_choice == "none":
        return messages
    text = tools_system_text(request.tools, request.tool_choice)
    if messages and messages[0]["role"] == "system":
        messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + text}
    else:
        messages.insert(0, {"role": "system", "content": text})
    if tools_key:
        messages[0]["tools"] = json.dumps([t.openai_schema()["function"] for t in request.tools])
    return messages


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
