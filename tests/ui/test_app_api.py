"""The running app driven over HTTP with gradio_client: the documented /chat endpoint."""

from __future__ import annotations

import concurrent.futures

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from backends.errors import BackendUnavailable
from backends.scripted import ScriptedBackend, ScriptedReply
from tests.ui.conftest import running_app


@pytest.fixture(scope="module")
def app_url() -> str:
    backend = ScriptedBackend(label="scripted", delay_s=0.01)
    backend.enqueue(*(ScriptedReply(chunks=["The ", "answer ", "is ", "270."]) for _ in range(20)))
    down = ScriptedBackend(
        label="down",
        replies=[
            ScriptedReply(chunks=["x"], error_after=0, error=BackendUnavailable("down", "connection refused"))
        ]
        * 5,
    )
    with running_app(backend, down) as url:
        yield url


def test_chat_endpoint_streams_the_answer_then_its_metrics(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    job = client.submit("How far?", "math", "scripted", {"temperature": 0.0}, api_name="/chat")
    partials = [update for update in job]
    answer, metrics = job.result()
    assert answer == "The answer is 270."
    assert len(partials) >= 2
    assert partials[0][0] != answer  # it streamed
    assert metrics["backend"] == "scripted"
    assert metrics["model"] == "scripted-model"
    assert metrics["completion_tokens"] == 4
    assert metrics["ttft_s"] >= 0
    assert metrics["decode_tokens_per_s"] > 0


def test_chat_endpoint_is_documented(app_url: str) -> None:
    api = Client(app_url, verbose=False).view_api(print_info=False, return_format="dict")
    endpoint = api["named_endpoints"]["/chat"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == [
        "prompt",
        "preset",
        "backend",
        "settings",
    ]
    assert "metrics" in endpoint["description"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("q", "nope", "scripted", {}), "no preset named 'nope'"),
        (("q", "math", "elsewhere", {}), "no backend named 'elsewhere'"),
        (("q", "math", "scripted", {"temperature": 9}), "temperature"),
        (("q", "math", "scripted", {"colour": 1}), "colour is not a setting"),
        (("q", "math", "down", {}), "connection refused"),
    ],
)
def test_chat_endpoint_errors_say_what_is_wrong(app_url: str, args: tuple, message: str) -> None:
    with pytest.raises(AppError, match=message):
        Client(app_url, verbose=False).predict(*args, api_name="/chat")


def test_concurrent_chats_all_complete(app_url: str) -> None:
    def one(i: int) -> str:
        return Client(app_url, verbose=False).predict(f"q{i}", "math", "scripted", {}, api_name="/chat")[0]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(4)))
    assert answers == ["The answer is 270."] * 4
