"""OllamaBackend against the Ollama stand-in: a real HTTP server speaking NDJSON on loopback."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import ChatRequest, Message, ReasoningDelta, TextDelta, ToolCall, ToolCallEvent, ToolSpec
from backends.errors import BackendResponseError, BackendUnavailable, InvalidRequest, ModelNotFound
from backends.ollama import SEED_PRESET_MODELS, OllamaBackend, ollama_base_url
from tests.remote.helpers import ask, collect, drain, text_of
from tests.remote.ollama_standin import LOAD_NS
from tests.remote.standin_http import free_port

WEATHER = ToolSpec(
    name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)


async def test_streams_text_and_reports_server_metrics_in_seconds(ollama_standin, ollama_backend):
    ollama_standin.script.text = ["The", " sky", " is", " blue."]
    ollama_standin.script.delay_s = 0.02
    events, done = await collect(ollama_backend, ask("Why is the sky blue?"))
    assert text_of(events) == "The sky is blue."
    m = done.metrics
    assert (m.prompt_tokens, m.completion_tokens, m.finish_reason) == (7, 4, "stop")  # 5 words + 2
    assert m.model == "phi4-mini"
    assert m.server["server_load_s"] == pytest.approx(LOAD_NS / 1e9)
    # three 20 ms pauses really happened inside eval_duration, reported in nanoseconds
    assert 0.05 < m.server["server_eval_s"] < 5
    assert m.server["server_tokens_per_s"] == pytest.approx(4 / m.server["server_eval_s"])
    assert m.server["server_total_s"] >= m.server["server_eval_s"]


async def test_options_are_mapped_onto_ollama_names(ollama_standin):
    backend = OllamaBackend("o", host=ollama_standin.url, model="phi4-mini", num_ctx=4096, keep_alive="10m")
    try:
        await collect(
            backend, ask(temperature=0.3, top_p=0.8, top_k=20, max_new_tokens=99, seed=3, stop=["END"])
        )
    finally:
        await backend.aclose()
    body = ollama_standin.bodies("/api/chat")[0]
    assert body["options"] == {
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 20,
        "num_predict": 99,
        "seed": 3,
        "stop": ["END"],
        "num_ctx": 4096,
    }
    assert body["stream"] is True
    assert body["keep_alive"] == "10m"
    assert body["model"] == "phi4-mini"


async def test_unset_options_keep_the_servers_defaults(ollama_standin, ollama_backend):
    await collect(ollama_backend, ask(top_k=0))
    options = ollama_standin.bodies("/api/chat")[0]["options"]
    assert not {"top_k", "seed", "stop", "num_ctx"} & set(options)


async def test_default_model_is_the_first_installed_one(ollama_standin):
    backend = OllamaBackend("o", host=ollama_standin.url)
    try:
        await collect(backend, ask())
    finally:
        await backend.aclose()
    assert ollama_standin.bodies("/api/chat")[0]["model"] == "phi4-mini:latest"
    assert backend.default_model() == "phi4-mini:latest"


async def test_list_models_and_show(ollama_backend):
    models = await ollama_backend.list_models()
    assert [m.id for m in models] == ["phi4-mini:latest", "smollm2:135m"]
    assert models[0].details == {
        "format": "gguf",
        "family": "phi4",
        "parameter_size": "3.8B",
        "quantization_level": "Q4_K_M",
    }
    shown = await ollama_backend.show_model("phi4-mini")
    assert shown.context_length == 131072
    assert shown.details["capabilities"] == "completion, tools"


async def test_health_reads_the_version(ollama_backend):
    health = await ollama_backend.health()
    assert (health.status, health.detail) == ("ready", "Ollama 0.12.6")


async def test_health_and_chat_when_ollama_is_not_running():
    backend = OllamaBackend("o", host=f"127.0.0.1:{free_port()}", model="phi4-mini", connect_timeout_s=1)
    try:
        health = await backend.health()
        with pytest.raises(BackendUnavailable) as caught:
            await collect(backend, ask())
    finally:
        await backend.aclose()
    assert health.status == "unreachable"
    assert "ollama serve" in caught.value.hint
    assert "OLLAMA_HOST" in caught.value.hint


async def test_unknown_model_says_how_to_pull_it(ollama_standin):
    backend = OllamaBackend("o", host=ollama_standin.url, model="qwen3:0.6b")
    try:
        with pytest.raises(ModelNotFound) as caught:
            await collect(backend, ask())
    finally:
        await backend.aclose()
    assert caught.value.hint == "run `ollama pull qwen3:0.6b`"
    assert caught.value.available == ["phi4-mini:latest", "smollm2:135m"]


async def test_tool_call_comes_back_with_object_arguments(ollama_standin, ollama_backend):
    ollama_standin.script.tool_calls = [{"name": "get_weather", "arguments": {"city": "Kyiv"}}]
    request = ChatRequest(messages=(Message(role="user", content="Weather in Kyiv?"),), tools=(WEATHER,))
    events, done = await collect(ollama_backend, request)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Kyiv"})]
    assert calls[0].id.startswith("call_")
    assert done.metrics.finish_reason == "tool_calls"
    assert ollama_standin.bodies("/api/chat")[0]["tools"] == [WEATHER.openai_schema()]


async def test_tools_on_a_model_without_tool_support_is_invalid(ollama_standin):
    backend = OllamaBackend("o", host=ollama_standin.url, model="smollm2:135m")
    request = ChatRequest(messages=(Message(role="user", content="hi"),), tools=(WEATHER,))
    try:
        with pytest.raises(InvalidRequest) as caught:
            await collect(backend, request)
    finally:
        await backend.aclose()
    assert "does not support tools" in caught.value.message
    assert "tool support" in caught.value.hint


async def test_tool_history_is_sent_in_ollama_shape(ollama_standin, ollama_backend):
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Kyiv"})
    request = ChatRequest(
        messages=(
            Message(role="user", content="Weather?"),
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content="21 C", tool_call_id="call_1", name="get_weather"),
        )
    )
    await collect(ollama_backend, request)
    sent = ollama_standin.bodies("/api/chat")[0]["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Kyiv"}}}]
    assert sent[2] == {"role": "tool", "content": "21 C", "tool_name": "get_weather"}


async def test_thinking_is_reasoning(ollama_standin, ollama_backend):
    ollama_standin.script.reasoning = ["Hmm", "."]
    ollama_standin.script.text = ["Yes"]
    events, _ = await collect(ollama_backend, ask())
    assert [type(e) for e in events] == [ReasoningDelta, ReasoningDelta, TextDelta]


async def test_error_line_mid_stream_keeps_the_text_and_raises(ollama_standin, ollama_backend):
    ollama_standin.script.text = ["Partial", " answer", " lost"]
    ollama_standin.script.error_after = 2
    ollama_standin.script.error_message = "an error was encountered while running the model: unexpected EOF"
    received: list = []
    with pytest.raises(BackendResponseError) as caught:
        await drain(ollama_backend, ask(), received)
    assert text_of(received) == "Partial answer"
    assert "unexpected EOF" in str(caught.value)


async def test_queue_full_is_a_response_error_with_status(ollama_standin, ollama_backend):
    ollama_standin.script.status_error = (
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    )
    with pytest.raises(BackendResponseError) as caught:
        await collect(ollama_backend, ask())
    assert caught.value.status == 503
    assert "maximum pending requests" in caught.value.message


async def test_closing_the_stream_early_closes_the_http_response(ollama_standin, ollama_backend):
    ollama_standin.script.text = ["tok"] * 200
    ollama_standin.script.delay_s = 0.02
    stream = ollama_backend.chat(ask())
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()
    for _ in range(100):
        if ollama_standin.disconnects:
            break
        await asyncio.sleep(0.02)
    assert ollama_standin.disconnects == 1


async def test_pull_reports_progress_until_success(ollama_standin, ollama_backend):
    progress = [p async for p in ollama_backend.pull("qwen3:0.6b")]
    assert progress[0].status == "pulling manifest"
    fractions = [p.fraction for p in progress if p.fraction is not None]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert progress[-1].status == "success"
    assert "qwen3:0.6b" in [m.id for m in await ollama_backend.list_models()]


async def test_pull_of_a_model_the_registry_lacks_raises_with_the_message(ollama_backend):
    with pytest.raises(BackendResponseError, match="file does not exist"):
        _ = [p async for p in ollama_backend.pull("no-such-model")]


@pytest.mark.parametrize("preset", SEED_PRESET_MODELS, ids=lambda p: p.name)
async def test_create_the_seed_presets_as_ollama_models(ollama_standin, ollama_backend, preset):
    statuses = [
        s
        async for s in ollama_backend.create_preset_model(
            preset.name, base=preset.base, system=preset.system, parameters=preset.parameters
        )
    ]
    assert statuses[-1] == "success"
    body = ollama_standin.bodies("/api/create")[0]
    assert body["model"] == preset.name
    assert body["from"] == "phi4-mini"
    assert body["system"] == preset.system
    assert body["parameters"] == dict(preset.parameters)
    assert "modelfile" not in body  # removed from the API in v0.5.5
    events, _ = await collect(
        ollama_backend, ChatRequest(messages=(Message(role="user", content="hi"),), model=preset.name)
    )
    assert text_of(events) == "Hello, world!"


async def test_create_from_a_missing_base_raises(ollama_backend):
    with pytest.raises(BackendResponseError, match="not found"):
        _ = [
            s
            async for s in ollama_backend.create_preset_model(
                "x", base="phi5-giant", system="", parameters={}
            )
        ]


def test_host_forms():
    assert ollama_base_url("localhost") == "http://localhost:11434"
    assert ollama_base_url("0.0.0.0:11434") == "http://127.0.0.1:11434"
    assert ollama_base_url("http://gpu-box:8080/") == "http://gpu-box:8080"
    assert ollama_base_url("https://ollama.example.com") == "https://ollama.example.com:443"


async def test_warm_up_loads_the_model_before_the_clock_starts(ollama_standin, ollama_backend):
    """Ollama loads a model on its first request; warm_up asks for that load (a chat with no
    messages, answered done_reason "load"), so the first answer's TTFT no longer includes it."""
    ollama_standin.load_s = 0.3
    ollama_standin.script.text = ["Hi."]
    assert await ollama_backend.warm_up() >= 0.3  # the load's seconds, reported apart
    assert ollama_standin.bodies("/api/chat")[0]["messages"] == []
    assert ollama_standin.loaded == {"phi4-mini:latest"}
    ollama_standin.load_s = 60.0  # a second load would now time the test out
    await ollama_backend.warm_up()  # loaded already: nothing to wait for
    events, _ = await collect(ollama_backend, ask("Hello"))
    assert text_of(events) == "Hi."


async def test_warm_up_of_a_model_ollama_lacks_names_it(ollama_standin):
    backend = OllamaBackend("ollama-standin", host=ollama_standin.url, model="nope", read_timeout_s=10)
    try:
        with pytest.raises(ModelNotFound, match="nope"):
            await backend.warm_up()
    finally:
        await backend.aclose()
