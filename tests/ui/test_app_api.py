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


def test_chat_endpoint_returns_the_math_verification(app_url: str) -> None:
    example = (
        "A train travels 240 km in 3 hours. If it increases its speed by 20 km/h, "
        "how long would the same journey take?"
    )
    _answer, metrics = Client(app_url, verbose=False).predict(
        example, "math", "scripted", {}, api_name="/chat"
    )
    verification = metrics["verification"]  # what the Math tab shows under the answer
    assert verification["final"] == "incorrect"  # "270" against the example's reference, 2.4
    assert set(verification) >= {"final", "claims"}


def test_chat_endpoint_has_no_verification_outside_math(app_url: str) -> None:
    _answer, metrics = Client(app_url, verbose=False).predict(
        "Hi", "reasoning", "scripted", {}, api_name="/chat"
    )
    assert "verification" not in metrics


def test_verify_endpoint_checks_steps_and_final(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    right = client.predict(
        "What is 15% of 240?", "36", "0.15 * 240 = 36\n\nFinal answer: 36", api_name="/verify"
    )
    assert right["final"] == "correct"
    wrong = client.predict(
        "What is 15% of 240?", "", "0.15 * 240 = 32\n\nFinal answer: 32", api_name="/verify"
    )
    assert wrong["final"] == "incorrect"
    assert any(c["verdict"] == "wrong" and c.get("expected") for c in wrong["claims"])
    with pytest.raises(AppError, match="invalid input: response give the answer to check"):
        client.predict("q", "1", "", api_name="/verify")
