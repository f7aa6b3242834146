import asyncio

import pytest
from pydantic import ValidationError

from backends.base import ChatRequest, Message, SamplingOptions, ToolSpec, decode_rate
from backends.errors import BackendError, BackendResponseError, ContextOverflow
from backends.scripted import ScriptedBackend, ScriptedReply


def _request(text: str = "hi") -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),))


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"temperature": 2.5},
        {"top_p": 0},
        {"top_k": -1},
        {"max_new_tokens": 0},
        {"stop": ("",)},
        {"stop": ("a", "b", "c", "d", "e")},
        {"seed": -1},
        {"temprature": 0.5},
    ],
)
def test_invalid_sampling_options_fail_before_any_io(bad: dict) -> None:
    with pytest.raises(ValidationError):
        SamplingOptions(**bad)


def test_request_needs_a_message_and_a_known_tool_choice() -> None:
    with pytest.raises(ValidationError):
        ChatRequest(messages=())
    tool = ToolSpec(name="area", parameters={"type": "object"})
    assert ChatRequest(messages=_request().messages, tools=(tool,), tool_choice="area").tool_choice == "area"
    with pytest.raises(ValidationError, match="not among the tools"):
        ChatRequest(messages=_request().messages, tools=(tool,), tool_choice="volume")


def test_decode_rate_excludes_the_first_token() -> None:
    assert decode_rate(11, 1.0, 2.0) == pytest.approx(10.0)
    assert decode_rate(1, 1.0, 2.0) is None
    assert decode_rate(5, 2.0, 2.0) is None


async def test_chat_measures_ttft_and_rate_on_the_client() -> None:
    backend = ScriptedBackend(delay_s=0.02, first_token_delay_s=0.1)
    backend.enqueue(ScriptedReply(chunks=("a", "b", "c", "d", "e", "f")))
    events = [e async for e in backend.chat(_request())]
    assert "".join(e.text for e in events if e.kind == "text") == "abcdef"
    metrics = events[-1].metrics
    assert events[-1].kind == "done"
    assert 0.09 < metrics.ttft_s < 0.5
    # 5 gaps of 20 ms after the first token: about 50 tok/s (sleep only overshoots)
    assert 10 < metrics.decode_tokens_per_s <= 51
    assert metrics.completion_tokens == 6
    assert metrics.total_s >= metrics.ttft_s
    assert "TTFT" in metrics.summary() and "tok/s" in metrics.summary()


async def test_closing_the_stream_closes_the_backend_stream() -> None:
    backend = ScriptedBackend(delay_s=0.01)
    backend.enqueue(ScriptedReply(chunks=tuple("abcdefgh")))
    stream = backend.chat(_request())
    got = [await anext(stream), await anext(stream)]
    await stream.aclose()
    assert [e.text for e in got] == ["a", "b"]
    assert backend.cancelled == 1


async def test_an_error_midway_reaches_the_caller_after_the_text() -> None:
    backend = ScriptedBackend()
    backend.enqueue(
        ScriptedReply(
            chunks=("one ", "two ", "three"),
            error_after=2,
            error=BackendResponseError("scripted", "connection dropped"),
        )
    )
    seen: list[str] = []

    async def drain() -> None:
        async for event in backend.chat(_request()):
            seen.append(event.text)

    with pytest.raises(BackendError, match="connection dropped"):
        await drain()
    assert seen == ["one ", "two "]


def test_context_overflow_names_both_numbers() -> None:
    err = ContextOverflow("onnx", prompt_tokens=9000, context_length=8192)
    assert "9000" in str(err) and "8192" in str(err)


async def test_parallel_streams_do_not_wait_for_each_other() -> None:
    slow, fast = ScriptedBackend("slow", delay_s=0.05), ScriptedBackend("fast", delay_s=0.0)
    slow.enqueue(ScriptedReply(chunks=tuple("abcdefgh")))
    order: list[str] = []

    async def drain(b: ScriptedBackend) -> None:
        async for event in b.chat(_request()):
            if event.kind == "done":
                order.append(b.name)

    await asyncio.gather(drain(slow), drain(fast))
    assert order == ["fast", "slow"]
