"""What real OpenAI clients send and expect, over real HTTP against a ScriptedBackend:
no-op defaults accepted, unsupported parameters refused by name, response_format, logprobs and
/v1/completions shapes, /v1/models/{id}, error bodies everywhere, 400s for bad input, a 500
that keeps the connection."""

from __future__ import annotations

import http.client
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from backends.base import ChatRequest, StreamEvent, TextDelta, TokenLogprob, Usage
from backends.scripted import ScriptedBackend, ScriptedReply
from tests.serve.conftest import MODEL, Engine
from tests.serve.test_engine_http import WEATHER, assert_openai_error, parse_metrics, sse_events

USER = [{"role": "user", "content": "say hello"}]


def post(engine: Engine, payload: dict, path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.post(f"{engine.base_url}{path}", json=payload, timeout=10)


# --- 1. parameters that ask for nothing are accepted; the rest are refused by name ----------


@pytest.mark.parametrize(
    "extra",
    [
        {"logprobs": False},
        {"logprobs": None, "top_logprobs": None},
        {"presence_penalty": 0, "frequency_penalty": 0.0},
        {"response_format": {"type": "text"}},
        {"n": 1},
        {"logit_bias": {}},
        {"logit_bias": None, "stop": None, "seed": None, "tools": None, "tool_choice": None},
        {"stream": None, "stream_options": None, "max_tokens": None, "temperature": None, "top_p": None},
        {"store": False, "metadata": {"run": "7"}, "service_tier": "auto", "user": "u1"},
        {"modalities": ["text"], "audio": None, "prediction": None, "parallel_tool_calls": True},
        {"tool_choice": "none"},
        {"repetition_penalty": 1.0, "min_p": 0, "best_of": 1, "stop_token_ids": []},
        {"stream": False, "n": None},
    ],
)
def test_parameters_that_ask_for_nothing_are_accepted(engine: Engine, extra: dict) -> None:
    response = post(engine, {"model": MODEL, "messages": USER, **extra})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello, world!"


def test_unknown_fields_inside_messages_are_ignored(engine: Engine) -> None:
    messages = [
        {"role": "system", "content": "be brief", "cache_control": {"type": "ephemeral"}},
        {"role": "user", "content": [{"type": "text", "text": "hi", "annotations": []}], "id": "m1"},
        {"role": "assistant", "content": "hello", "refusal": None, "audio": None, "annotations": []},
        {"role": "user", "content": "again", "name": "ann"},
    ]
    assert post(engine, {"model": MODEL, "messages": messages}).status_code == 200
    assert [m.content for m in engine.backend.requests[-1].messages] == ["be brief", "hi", "hello", "again"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"n": 2}, "n"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"repetition_penalty": 1.3}, "repetition_penalty"),
        ({"service_tier": "flex"}, "service_tier"),
    ],
)
def test_unsupported_parameters_are_refused_by_name(engine: Engine, extra: dict, param: str) -> None:
    error = assert_openai_error(post(engine, {"model": MODEL, "messages": USER, **extra}), 400, param)
    assert error["code"] == "unsupported_parameter"
    assert f"{param}=" in error["message"]
    assert "not supported" in error["message"]
    assert engine.backend.requests == []


def test_unknown_top_level_parameter_is_still_refused(engine: Engine) -> None:
    assert_openai_error(post(engine, {"model": MODEL, "messages": USER, "frobnicate": 1}), 400, "frobnicate")


# --- 2. response_format reaches the backend as the JSON output setting ------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_response_format_maps_onto_json_output(engine: Engine) -> None:
    engine.client.chat.completions.create(model=MODEL, messages=USER, response_format={"type": "json_object"})
    options = engine.backend.requests[-1].options
    assert (options.json_output, options.json_schema) == (True, None)
    engine.client.chat.completions.create(
        model=MODEL,
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "place", "schema": SCHEMA, "strict": True},
        },
    )
    options = engine.backend.requests[-1].options
    assert (options.json_output, options.json_schema) == (True, SCHEMA)
    engine.client.chat.completions.create(model=MODEL, messages=USER)
    assert engine.backend.requests[-1].options.json_output is False


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "xml"}, "response_format"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": SCHEMA}},
            "response_format.json_schema.name",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": [1]}},
            "response_format.json_schema.schema",
        ),
    ],
)
def test_bad_response_format_is_a_400(engine: Engine, response_format: dict, param: str) -> None:
    assert_openai_error(
        post(engine, {"model": MODEL, "messages": USER, "response_format": response_format}), 400, param
    )


# --- 3. logprobs: refused where the backend has none, OpenAI's shape where it has ------------


class LogprobBackend(ScriptedBackend):
    """Scripted tokens with made-up log-probabilities, as a backend that supports them."""

    supports_logprobs = True
    supports_completion = True

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else ScriptedReply()
        want = request.logprobs
        for i, chunk in enumerate(reply.chunks):
            top = tuple((f"{chunk}~{j}", -0.1 * (i + 1) - j) for j in range(want or 0))
            entries = (TokenLogprob(chunk, -0.1 * (i + 1), top),) if want is not None else ()
            yield TextDelta(chunk, logprobs=entries)
        yield Usage(prompt_tokens=3, completion_tokens=len(reply.chunks), finish_reason=reply.finish_reason)  # type: ignore[arg-type]


@pytest.fixture
def logprob_engine(start_engine) -> Engine:
    return start_engine(LogprobBackend())


def test_logprobs_on_a_backend_without_them_is_a_clear_400(engine: Engine) -> None:
    error = assert_openai_error(
        post(engine, {"model": MODEL, "messages": USER, "logprobs": True}), 400, "logprobs"
    )
    assert "not supported" in error["message"]
    body = {"model": MODEL, "messages": USER, "top_logprobs": 2}
    assert_openai_error(post(engine, body), 400, "top_logprobs")


def test_chat_logprobs_shape(logprob_engine: Engine) -> None:
    logprob_engine.backend.enqueue(ScriptedReply(chunks=("Hel", "lo")))
    result = logprob_engine.client.chat.completions.create(
        model=MODEL, messages=USER, logprobs=True, top_logprobs=2
    )
    assert logprob_engine.backend.requests[-1].logprobs == 2
    content = result.choices[0].logprobs.content
    assert [t.token for t in content] == ["Hel", "lo"]
    assert content[0].bytes == list(b"Hel")
    assert content[1].logprob == pytest.approx(-0.2)
    assert [t.token for t in content[1].top_logprobs] == ["lo~0", "lo~1"]
    plain = logprob_engine.client.chat.completions.create(model=MODEL, messages=USER)
    assert plain.choices[0].logprobs is None
    assert logprob_engine.backend.requests[-1].logprobs is None


def test_streamed_chat_logprobs_ride_on_their_deltas(logprob_engine: Engine) -> None:
    logprob_engine.backend.enqueue(ScriptedReply(chunks=("a", "b", "c")))
    chunks = list(
        logprob_engine.client.chat.completions.create(model=MODEL, messages=USER, logprobs=True, stream=True)
    )
    tokens = [
        t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content
    ]
    assert tokens == ["a", "b", "c"]
    texted = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert all(c.choices[0].logprobs.content[0].token == c.choices[0].delta.content for c in texted)


# --- 4. /v1/completions ---------------------------------------------------------------------------


def test_completions_need_a_backend_that_does_them(engine: Engine) -> None:
    response = post(engine, {"model": MODEL, "prompt": "Once"}, "/v1/completions")
    assert "use /v1/chat/completions" in assert_openai_error(response, 404, None)["message"]


def test_completion_of_a_string_prompt(logprob_engine: Engine) -> None:
    logprob_engine.backend.enqueue(ScriptedReply(chunks=(" upon", " a time"), finish_reason="length"))
    result = logprob_engine.client.completions.create(model=MODEL, prompt="Once", stop=["\n"], echo=False)
    assert result.object == "text_completion"
    assert result.id.startswith("cmpl-")
    assert [(c.index, c.text, c.finish_reason) for c in result.choices] == [(0, " upon a time", "length")]
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 2)
    sent = logprob_engine.backend.requests[-1]
    assert sent.completion is True
    assert sent.messages[-1].content == "Once"
    assert sent.options.stop == ("\n",)
    assert sent.options.max_new_tokens == 16  # OpenAI's default for this endpoint


def test_completion_of_a_list_of_prompts_gives_one_choice_each(logprob_engine: Engine) -> None:
    logprob_engine.backend.enqueue(ScriptedReply(chunks=(" A",)), ScriptedReply(chunks=(" B", "!")))
    result = logprob_engine.client.completions.create(
        model=MODEL, prompt=["one", "two"], max_tokens=5, logprobs=1
    )
    assert [(c.index, c.text) for c in result.choices] == [(0, " A"), (1, " B!")]
    assert result.choices[1].logprobs.tokens == [" B", "!"]
    assert result.choices[1].logprobs.text_offset == [0, 2]
    assert result.usage.completion_tokens == 3
    assert [r.messages[-1].content for r in logprob_engine.backend.requests] == ["one", "two"]
    assert logprob_engine.backend.requests[-1].options.max_new_tokens == 5


def test_streamed_completion_with_usage(logprob_engine: Engine) -> None:
    logprob_engine.backend.enqueue(ScriptedReply(chunks=(" x", " y")), ScriptedReply(chunks=(" z",)))
    payload = {
        "model": MODEL,
        "prompt": ["p", "q"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = _completion_events(logprob_engine, payload)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    texts = [(c["choices"][0]["index"], c["choices"][0]["text"]) for c in chunks if c["choices"]]
    assert texts == [(0, " x"), (0, " y"), (0, ""), (1, " z"), (1, "")]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes == [None, None, "stop", None, "stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}


def _completion_events(engine: Engine, payload: dict) -> list[str]:
    with httpx.stream("POST", f"{engine.base_url}/v1/completions", json=payload, timeout=10) as response:
        assert response.status_code == 200
        return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def test_completion_echo_prepends_the_prompt(logprob_engine: Engine) -> None:
    result = logprob_engine.client.completions.create(model=MODEL, prompt="Say:", echo=True)
    assert result.choices[0].text == "Say:Hello, world!"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": []}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "logprobs": 6}, "logprobs"),
        ({"prompt": "x", "echo": True, "logprobs": 1}, "echo"),
        ({"prompt": "x", "max_tokens": 257}, "max_tokens"),
        ({"prompt": "x", "messages": USER}, "messages"),
    ],
)
def test_bad_completion_requests_are_400s(logprob_engine: Engine, extra: dict, param: str) -> None:
    assert_openai_error(post(logprob_engine, {"model": MODEL, **extra}, "/v1/completions"), 400, param)


def test_completion_defaults_are_accepted(logprob_engine: Engine) -> None:
    body = {
        "model": MODEL,
        "prompt": "x",
        "n": 1,
        "best_of": None,
        "suffix": None,
        "presence_penalty": 0,
        "echo": False,
    }
    assert post(logprob_engine, body, "/v1/completions").status_code == 200


# --- 5. models/{id}, error bodies everywhere, 415, tools rules, bad input never a 500 ---------


def test_models_retrieve(engine: Engine) -> None:
    model = engine.client.models.retrieve(MODEL)
    assert (model.id, model.object) == (MODEL, "model")
    with pytest.raises(openai.NotFoundError) as caught:
        engine.client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/v1/embeddings", 404), ("GET", "/nope", 404), ("GET", "/v1/chat/completions", 405)],
)
def test_unknown_routes_and_methods_answer_openai_error_bodies(
    engine: Engine, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, f"{engine.base_url}{path}")
    assert response.headers["content-type"] == "application/json"
    assert_openai_error(response, status, None)


def test_non_json_content_type_is_a_415(engine: Engine) -> None:
    form = httpx.post(f"{engine.base_url}/v1/chat/completions", data={"model": MODEL})
    error = assert_openai_error(form, 415, None)
    assert "application/json" in error["message"]
    typed = httpx.post(
        f"{engine.base_url}/v1/chat/completions",
        content=json.dumps({"model": MODEL, "messages": USER}),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert typed.status_code == 200


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"tools": []}, "tools", "offers no tools"),
        ({"tool_choice": "auto"}, "tool_choice", "needs tools"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            "tool_choice",
            "needs tools",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools", "same name"),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!", "parameters": {}}}]},
            "tools[0].function.name",
            "should match pattern",
        ),
    ],
)
def test_tool_rules_are_400s(engine: Engine, extra: dict, param: str, words: str) -> None:
    error = assert_openai_error(post(engine, {"model": MODEL, "messages": USER, **extra}), 400, param)
    assert words in error["message"]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            b'{"model": "scripted-model", "messages": [{"role": "user", "content": "a \\ud800 b"}]}',
            "messages[0].content",
        ),
        (
            b'{"model": "scripted-model", "messages": [{"role": "user", "content": "x", "\\udfff": 1}]}',
            "messages[0]",
        ),
        (b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
        (b'{"model": "m", "x": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}", None),
        (json.dumps({"model": MODEL, "messages": USER, "metadata": nested(60)}).encode(), "metadata"),
        (
            json.dumps(
                {
                    "model": MODEL,
                    "messages": USER,
                    "tools": [{"type": "function", "function": {"name": "f", "parameters": nested(60)}}],
                }
            ).encode(),
            "tools",
        ),
    ],
    ids=[
        "lone-surrogate",
        "surrogate-key",
        "array-100k-deep",
        "object-100k-deep",
        "deep-metadata",
        "deep-tool-schema",
    ],
)
def test_bad_input_is_a_400_never_a_500(engine: Engine, raw: bytes, param: str | None) -> None:
    response = httpx.post(
        f"{engine.base_url}/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 400, param)
    assert engine.backend.requests == []


def test_a_500_keeps_the_connection_and_is_counted(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(error_after=0, error=RuntimeError("a bug")))  # type: ignore[arg-type]
    conn = http.client.HTTPConnection(engine.server.host, engine.server.port, timeout=10)
    body = json.dumps({"model": MODEL, "messages": USER})
    headers = {"content-type": "application/json"}
    conn.request("POST", "/v1/chat/completions", body, headers)
    failed = conn.getresponse()
    error = json.loads(failed.read())["error"]
    assert failed.status == 500
    assert error["type"] == "server_error"
    assert "a bug" not in error["message"]  # the traceback goes to the log, not the client
    socket_before = conn.sock
    conn.request("POST", "/v1/chat/completions", body, headers)
    ok = conn.getresponse()
    assert ok.status == 200
    assert json.loads(ok.read())["choices"][0]["message"]["content"] == "Hello, world!"
    assert conn.sock is socket_before  # the same keep-alive connection answered
    conn.close()
    metrics = parse_metrics(httpx.get(f"{engine.base_url}/metrics").text)
    assert metrics[f'slm_engine:requests_total{{model_name="{MODEL}",status="500"}}'] == 1


def test_an_unexpected_error_mid_stream_is_an_error_event(engine: Engine) -> None:
    engine.backend.enqueue(ScriptedReply(chunks=("a", "b"), error_after=1, error=RuntimeError("bug")))  # type: ignore[arg-type]
    events = sse_events(engine, {"model": MODEL, "messages": USER, "stream": True})
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["type"] == "server_error"
