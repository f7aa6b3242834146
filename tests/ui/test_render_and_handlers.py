"""Chat turns above the backend layer, with scripted backends: streaming, metrics, errors,
Stop, multi-turn history, regenerate, tools and the in-process queue."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from app.pacing import StopSignals, chat_states, mark_stopped, paced
from app.render import text_of, to_model_messages
from app.turns import ChatService, PanelValues
from backends.base import ToolCall
from backends.errors import BackendUnavailable, ContextOverflow
from backends.scripted import ScriptedBackend, ScriptedReply
from presets import load_catalog
from runtime.registry import BackendRegistry
from runtime.settings import Settings

PANEL = PanelValues("Show each calculation.", 0.3, 0.8, 0, 128, None, False)


def service_with(*backends: ScriptedBackend, **settings: Any) -> ChatService:
    config = Settings(**settings)
    return ChatService(config, BackendRegistry.with_backends(config, *backends), load_catalog())


async def run(service: ChatService, prompt: str, history: list | None = None, **kw: Any) -> list[list[Any]]:
    panel = kw.pop("panel", PANEL)
    label = kw.pop("label", "scripted")
    return [list(v) for v in [x async for x in service.respond(prompt, history or [], label, panel, **kw)]]


def meta(message: Any) -> dict:
    return (message.metadata if hasattr(message, "metadata") else message.get("metadata")) or {}


def kinds(history: list) -> list[str]:
    return [meta(m).get("id", m["role"] if isinstance(m, dict) else "text") for m in history]


def as_dicts(history: list) -> list[dict]:
    out = []
    for m in history:
        if isinstance(m, dict):
            out.append(m)
        else:
            out.append({"role": m.role, "content": m.content, "metadata": m.metadata or None})
    return out


async def test_answer_streams_and_ends_with_a_metrics_line() -> None:
    backend = ScriptedBackend(replies=[ScriptedReply(chunks=["The ", "answer ", "is ", "2.4"])])
    states = await run(service_with(backend), "How long?")
    answers = [text_of(s[1].content) for s in states if len(s) > 1 and not meta(s[1])]
    assert answers[:4] == ["The ", "The answer ", "The answer is ", "The answer is 2.4"]
    final = states[-1]
    assert kinds(final) == ["user", "text", "metrics"]
    line = meta(final[-1])["title"]
    assert "scripted · scripted-model" in line
    assert "TTFT" in line
    assert "4 completion tokens" in line
    assert backend.requests[0].messages[0].content == "Show each calculation."
    assert backend.requests[0].options.temperature == 0.3


async def test_backend_error_becomes_a_message_and_keeps_the_partial_answer() -> None:
    failure = BackendUnavailable("scripted", "connection refused", hint="start the server")
    backend = ScriptedBackend(
        replies=[ScriptedReply(chunks=["Half ", "an ", "answer"], error_after=2, error=failure)]
    )
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    final = (await run(service_with(backend), "next?", earlier))[-1]
    assert final[:2] == earlier
    assert text_of(final[3].content) == "Half an "
    error = final[-1]
    assert meta(error)["id"] == "error"
    assert "unavailable" in meta(error)["title"]
    assert "connection refused" in error.content
    assert "start the server" in error.content


async def test_context_overflow_is_explained() -> None:
    overflow = ContextOverflow("scripted", prompt_tokens=3000, context_length=2048)
    backend = ScriptedBackend(replies=[ScriptedReply(chunks=["x"], error_after=0, error=overflow)])
    final = (await run(service_with(backend), "long"))[-1]
    assert "context" in meta(final[-1])["title"]
    assert "3000 prompt tokens" in final[-1].content


async def test_unknown_backend_and_bad_settings_are_messages() -> None:
    service = service_with(ScriptedBackend())
    final = (await run(service, "q", label="nowhere"))[-1]
    assert "no backend named 'nowhere'" in final[-1].content
    bad = PanelValues("", 7.0, 0.8, 0, 128, None, False)
    final = (await run(service, "q", panel=bad))[-1]
    assert "temperature" in final[-1].content


async def test_cancelling_the_task_closes_the_backend_stream() -> None:
    backend = ScriptedBackend(delay_s=0.05, replies=[ScriptedReply(chunks=[f"w{i} " for i in range(100)])])
    service = service_with(backend)
    seen: list[list] = []

    async def consume() -> None:
        async for value in service.respond("go", [], "scripted", PANEL):
            seen.append(value)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # a few chunks of 0.05 s each
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.cancelled == 1
    shown = as_dicts(seen[-1])
    stopped = mark_stopped(shown)
    assert meta(stopped[-1])["id"] == "stopped"
    assert text_of(stopped[1]["content"]).startswith("w0 w1")
    assert mark_stopped(stopped) == stopped  # pressing Stop twice adds one note


async def test_stop_ends_the_turn_with_the_note_as_its_last_update() -> None:
    backend = ScriptedBackend(delay_s=0.05, replies=[ScriptedReply(chunks=[f"w{i} " for i in range(100)])])
    service = service_with(backend)
    stops = StopSignals()
    seen: list[list] = []

    async def consume() -> None:
        with stops.watch(("session", "math")) as stop:
            async for value in chat_states(service.respond("go", [], "scripted", PANEL), stop, [], 0):
                seen.append(as_dicts(value))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    assert not stops.stop(("other-session", "math"))
    assert stops.stop(("session", "math"))
    await asyncio.wait_for(task, 2)
    assert backend.cancelled == 1  # the backend's stream was closed
    assert kinds(seen[-1]) == ["user", "assistant", "stopped"]
    assert text_of(seen[-1][1]["content"]) == text_of(seen[-2][1]["content"])  # nothing lost
    assert not stops.stop(("session", "math"))  # the turn is over; nothing left to stop


async def test_stop_while_queued_for_the_in_process_model_drops_the_waiting_note() -> None:
    from tests.support.scripted_engine import ScriptedEngineBackend

    local = ScriptedEngineBackend("local", rows=1)  # one row: the second one queues
    service = ChatService(Settings(), BackendRegistry.with_backends(Settings(), local), load_catalog())
    local.hold.clear()
    stops = StopSignals()
    first = asyncio.create_task(run(service, "q", label="local"))
    await asyncio.to_thread(wait_until, local.busy)
    seen: list[list] = []

    async def queued() -> None:
        with stops.watch("second") as stop:
            async for value in chat_states(service.respond("q2", [], "local", PANEL), stop, [], 0):
                seen.append(as_dicts(value))

    second = asyncio.create_task(queued())
    await asyncio.to_thread(wait_until, lambda: local.waiting() == 1)
    await asyncio.sleep(0.05)  # the note reaches the view
    assert kinds(seen[-1])[-1] == "waiting"
    stops.stop("second")
    await asyncio.wait_for(second, 2)
    assert kinds(seen[-1]) == ["user", "stopped"]
    assert local.waiting() == 0  # it left the engine's queue
    local.hold.set()
    assert kinds((await first)[-1])[-1] == "metrics"  # the running turn is untouched
    assert local.engine is not None and len(local.engine.admitted) == 1  # the stopped one never ran
    await local.aclose()


async def collect_states(turn: Any) -> list[list[Any]]:
    return [list(state) async for state in turn]


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    """Poll a condition another thread makes true (the scheduler's queue)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def test_paced_sends_first_and_last_and_flushes_a_held_update_when_the_stream_stalls() -> None:
    closed = []

    async def states() -> Any:
        try:
            for i in range(1, 11):  # ten updates 5 ms apart, then a stall, then one more
                yield i
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.3)
            yield 11
        finally:
            closed.append(True)

    got: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    async for value in paced(states(), 0.05):
        got.append((value, loop.time() - start))
    values = [v for v, _ in got]
    assert values[0] == 1 and values[-1] == 11  # first and last always pass
    assert 10 in values  # held back, then sent when its interval ended, before the stall ended
    assert next(t for v, t in got if v == 10) < 0.25
    assert len(values) < 11  # the burst was coalesced
    times = [t for _, t in got]
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(times))  # never faster than the interval
    assert values == sorted(values) and closed == [True]


async def test_multi_turn_sends_history_without_display_sections() -> None:
    backend = ScriptedBackend(replies=[ScriptedReply(chunks=["first"]), ScriptedReply(chunks=["second"])])
    service = service_with(backend)
    turn1 = as_dicts((await run(service, "one"))[-1])
    await run(service, "two", turn1)
    sent = [(m.role, m.content) for m in backend.requests[1].messages]
    assert sent == [
        ("system", "Show each calculation."),
        ("user", "one"),
        ("assistant", "first"),
        ("user", "two"),
    ]


async def test_regenerate_replaces_the_last_turn() -> None:
    backend = ScriptedBackend(replies=[ScriptedReply(chunks=["a"]), ScriptedReply(chunks=["b"])])
    service = service_with(backend)
    turn = as_dicts((await run(service, "q"))[-1])
    again = [as_dicts(v) async for v in service.regenerate(turn, "scripted", PANEL, lambda _p: None)][-1]
    assert [text_of(m["content"]) for m in again if not m.get("metadata")] == ["q", "b"]


async def test_tool_call_is_run_and_the_turn_continues() -> None:
    call = ToolCall(id="t1", name="calculate_circle_area", arguments={"radius": 5})
    backend = ScriptedBackend(
        replies=[ScriptedReply(chunks=[], tool_calls=[call]), ScriptedReply(chunks=["About ", "78.54"])]
    )
    panel = PanelValues("", 0.3, 0.8, 0, 128, None, True)
    final = (await run(service_with(backend), "circle r=5", panel=panel))[-1]
    tool = next(m for m in final if meta(m).get("id") == "tool")
    assert meta(tool)["status"] == "done"
    assert "78.5398" in tool.content
    assert [t.name for t in backend.requests[0].tools] == ["calculator", "calculate_circle_area"]
    second = backend.requests[1].messages
    assert second[-2].tool_calls == (call,)
    assert (second[-1].role, second[-1].tool_call_id) == ("tool", "t1")
    assert "78.5398" in second[-1].content
    assert text_of(final[-2].content) == "About 78.54"


async def test_bad_tool_call_is_shown_and_not_run() -> None:
    call = ToolCall(id="t1", name="calculator", arguments={"expression": "__import__('os')"})
    backend = ScriptedBackend(
        replies=[ScriptedReply(chunks=[], tool_calls=[call]), ScriptedReply(chunks=["ok"])]
    )
    panel = PanelValues("", 0.3, 0.8, 0, 128, None, True)
    final = (await run(service_with(backend), "hack", panel=panel))[-1]
    tool = next(m for m in final if meta(m).get("id") == "tool")
    assert "refused" in meta(tool)["title"]
    assert "not allowed" in tool.content
    assert "not allowed" in backend.requests[1].messages[-1].content


async def test_in_process_requests_queue_visibly_and_remote_ones_do_not_wait() -> None:
    from tests.support.scripted_engine import ScriptedEngineBackend

    local = ScriptedEngineBackend("local", rows=1)  # one row: the second one queues
    remote = ScriptedBackend(label="remote", replies=[ScriptedReply(chunks=["fast"])])
    config = Settings()
    service = ChatService(config, BackendRegistry.with_backends(config, local, remote), load_catalog())
    local.hold.clear()
    order: list[str] = []
    waits: list[bool] = []

    async def chat(label: str) -> None:
        states = await run(service, "q", label=label)
        waits.append(any(meta(m).get("id") == "waiting" for s in states for m in s))
        assert kinds(states[-1])[-1] == "metrics"
        order.append(label)

    first = asyncio.create_task(chat("local"))
    await asyncio.to_thread(wait_until, local.busy)
    second = asyncio.create_task(chat("local"))
    await asyncio.to_thread(wait_until, lambda: local.waiting() == 1)
    await chat("remote")  # while the local engine is held: nothing queues it
    local.hold.set()
    await asyncio.gather(first, second)
    assert order[0] == "remote"
    assert waits.count(True) == 1
    await local.aclose()


def test_to_model_messages_reads_gradio_block_content() -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "yo"}], "metadata": None},
        {"role": "assistant", "content": "", "metadata": {"title": "📊 metrics"}},
    ]
    assert [(m.role, m.content) for m in to_model_messages("", history)] == [
        ("user", "hi"),
        ("assistant", "yo"),
    ]


async def test_health_strip_and_endpoint_form() -> None:
    from app.backends_view import endpoint_from_form, health_strip
    from backends.base import Health

    down = ScriptedBackend(label="remote", health_status=Health("unreachable", "connection refused"))
    service = service_with(ScriptedBackend(label="onnx", health_status=Health("loading")), down)
    strip = await health_strip(service.registry)
    assert 'health-dot loading" aria-hidden="true"></span>`onnx` loading' in strip
    assert (
        'health-dot unreachable" aria-hidden="true"></span>`remote` unreachable (connection refused)' in strip
    )
    assert not any(ord(ch) > 0x2FFF for ch in strip)  # no emoji: nothing a missing font shows as a box
    endpoint = endpoint_from_form("vllm", "http://gpu:8000/v1/", "gpu", "", "", ["onnx"])
    assert (endpoint.url, endpoint.label) == ("http://gpu:8000/v1", "gpu")
    with pytest.raises(ValueError, match="http://"):
        endpoint_from_form("vllm", "gpu:8000", "", "", "", [])
    with pytest.raises(ValueError, match="already exists"):
        endpoint_from_form("ollama", "http://x", "onnx", "", "", ["onnx"])


async def test_a_turn_that_waits_for_an_in_process_engine_shows_its_place_and_counts_the_wait() -> None:
    """The engine's own queue is the queue: a turn behind a full engine shows its place in line
    (from the engine, for any in-process kind), and the wait is in its TTFT and its queue_s."""
    from app.turns import TurnRecord
    from tests.support.scripted_engine import ScriptedEngineBackend

    local = ScriptedEngineBackend("local", rows=1)  # one row: the second turn queues
    service = ChatService(Settings(), BackendRegistry.with_backends(Settings(), local), load_catalog())
    local.hold.clear()
    first = asyncio.create_task(run(service, "q1", label="local", session="a"))
    await asyncio.to_thread(wait_until, local.busy)  # the first holds the engine's only row
    record = TurnRecord()
    states: list[list[Any]] = []
    second = service.respond("q2", [], "local", PANEL, session="b", record=record)
    states.append(list(await anext(second)))  # the question
    states.append(list(await anext(second)))  # the place in line
    assert "1 request ahead" in str(as_dicts(states[-1])[-1])
    rest = asyncio.create_task(collect_states(second))
    await asyncio.to_thread(wait_until, lambda: local.waiting() == 1)  # in the engine's queue
    await asyncio.sleep(0.3)  # the time the second one waits: it must show in its TTFT
    local.hold.set()
    states += await rest
    await first
    assert "waiting" not in kinds(states[-1])  # the note is gone once the answer flows
    assert "The answer is 42." in str(as_dicts(states[-1]))
    assert record.metrics is not None
    assert record.metrics["server"]["queue_s"] >= 0.3
    assert record.metrics["ttft_s"] >= 0.3  # without the wait it would be a few ms
    await local.aclose()
