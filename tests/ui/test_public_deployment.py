"""A public instance driven as a visitor would, over its HTTP API (gradio_client): no
user-entered URL or folder is ever contacted or loaded, limits hold where requests arrive, and
every bad input gets one short line that names the field. A loopback listener proves that no
connection is made."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from backends.scripted import ScriptedBackend, ScriptedReply
from tests.support.listener import Listener, loopback_listener
from tests.ui.conftest import running_app

LONG = "What is 2 + 2? " * 600  # 9,000 characters: over the public limit (8,000)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    with loopback_listener() as found:
        yield found


@pytest.fixture(scope="module")
def public_url() -> Iterator[str]:
    local = ScriptedBackend(label="onnx")
    remote = ScriptedBackend(label="openai")
    for backend in (local, remote):
        backend.enqueue(*(ScriptedReply(chunks=["4"]) for _ in range(50)))
    with running_app(
        local, remote, public=True, max_prompt_chars=8000, max_new_tokens_cap=1024, max_runs=5
    ) as url:
        yield url


@pytest.fixture(scope="module")
def client(public_url: str) -> Client:
    return Client(public_url, verbose=False)


def refused(client: Client, *args: object, api_name: str) -> str:
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


@pytest.mark.parametrize(
    "lanes",
    [
        ["onnx", "openai:stub@{url}"],
        ["onnx", "vllm:stub@{url}"],
        ["onnx", "ollama:stub@{host}"],
        ["openai", "openai:stub@{url}#temperature=0"],
    ],
)
def test_compare_api_never_contacts_a_typed_url(client: Client, listener: Listener, lanes: list[str]) -> None:
    host = urlsplit(listener.url).netloc
    specs = [lane.format(url=listener.url, host=host) for lane in lanes]
    message = refused(client, specs, "2+2?", "math", api_name="/compare")
    assert "configured backends" in message
    assert "Traceback" not in message and "pydantic" not in message
    assert not listener.connections


def test_chat_api_takes_only_configured_labels(client: Client, listener: Listener) -> None:
    spec = f"openai:stub@{listener.url}"
    assert "no backend named" in refused(client, "2+2?", "math", spec, {}, api_name="/chat")
    assert not listener.connections


def test_compare_api_cannot_load_a_folder(client: Client) -> None:
    assert "not a folder" in refused(client, ["onnx", "onnx:/etc"], "2+2?", "math", api_name="/compare")


def test_configured_pair_is_accepted_including_the_in_process_label(client: Client) -> None:
    card = client.predict(["onnx", "openai"], "2+2?", "math", api_name="/compare")
    assert [lane["spec"] for lane in card["lanes"]] == ["onnx", "openai"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((LONG, "math", "onnx", {}), "prompt has 9,000 characters; this instance takes at most 8,000"),
        (("", "math", "onnx", {}), "prompt is empty"),
        (("   \n ", "math", "onnx", {}), "prompt is empty"),
        (("2+2?", "math", "onnx", {"temperature": "hot"}), "temperature must be a number from 0.0 to 2.0"),
        (
            ("2+2?", "math", "onnx", {"temperature": 99}),
            "temperature must be a number from 0.0 to 2.0 or null (got 99)",
        ),
        (("2+2?", "math", "onnx", {"top_k": [1]}), "top_k must be a whole number from 0 to 1000"),
        (("2+2?", "math", "onnx", {"max_new_tokens": 5000}), "max_new_tokens must be a whole number from 1"),
        (("2+2?", "math", "onnx", {"max_new_tokens": 1025}), "from 1 to 1024 on this instance"),
        (("2+2?", "math", "onnx", "0 = hot"), "settings must be an object"),
        (("2+2?", "poetry", "onnx", {}), "no preset named 'poetry'"),
    ],
)
def test_chat_api_errors_name_the_field_and_the_range(client: Client, args: tuple, words: str) -> None:
    message = refused(client, *args, api_name="/chat")
    assert words in message
    assert "upstream" not in message and "errors.pydantic.dev" not in message


def test_chat_api_null_settings_mean_the_presets(client: Client) -> None:
    answer, metrics = client.predict("2+2?", "math", "onnx", {"max_new_tokens": None}, api_name="/chat")
    assert answer == "4" and metrics["completion_tokens"] == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((["onnx", "nope"], "2+2?"), "unknown lane 'nope'"),
        ((["onnx", "openai"], "2+2?", "math", None, None, "x"), "runs must be a whole number from 1 to 5"),
        ((["onnx", "openai"], "2+2?", "math", None, None, 6), "runs must be a whole number from 1 to 5"),
        ((["onnx", "openai"], "2+2?", "math", None, {"max_new_tokens": 5000}), "max_new_tokens must be"),
        ((["onnx", "openai"], LONG, "math"), "prompt has 9,000 characters"),
        ((["onnx", "openai"], "  "), "prompt is empty"),
        ((["onnx", "openai"], "2+2?", "math", None, "hot"), "settings must be an object"),
        (("onnx", "2+2?"), "lanes"),
    ],
)
def test_compare_api_errors_name_the_field(client: Client, args: tuple, words: str) -> None:
    message = refused(client, *args, api_name="/compare")
    assert words in message
    assert "upstream" not in message


def test_requests_past_the_queue_are_refused_and_none_is_lost() -> None:
    hold = threading.Event()
    slow = ScriptedBackend(label="remote", hold=hold)  # not "onnx": that one also waits for its gate
    slow.enqueue(*(ScriptedReply(chunks=["ok"]) for _ in range(5)))
    with running_app(slow, queue_size=2, per_client=5) as url:
        client = Client(url, verbose=False)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            running = [
                pool.submit(client.predict, "hi", "math", "remote", {}, api_name="/chat") for _ in range(2)
            ]
            for _ in running:
                assert slow.arrived.acquire(timeout=20)  # both are in the backend now
            message = refused(client, "hi", "math", "remote", {}, api_name="/chat")
            hold.set()
            answers = [future.result(timeout=20)[0] for future in running]
    assert "server is busy (2 requests running, at most 2)" in message
    assert answers == ["ok", "ok"]
    assert len(slow.requests) == 2  # the refused one never reached the backend


def test_one_client_cannot_take_every_place() -> None:
    hold = threading.Event()
    slow = ScriptedBackend(label="remote", hold=hold)  # not "onnx": that one also waits for its gate
    slow.enqueue(*(ScriptedReply(chunks=["ok"]) for _ in range(5)))
    with running_app(slow, queue_size=10, per_client=1) as url:
        client = Client(url, verbose=False)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.predict, "hi", "math", "remote", {}, api_name="/chat")
            assert slow.arrived.acquire(timeout=20)
            message = refused(client, "hi", "math", "remote", {}, api_name="/chat")
            hold.set()
            assert first.result(timeout=20)[0] == "ok"
    assert "at most 1 per client" in message


def raw_get(url: str, target: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def test_an_over_long_link_gets_a_page_that_says_so(public_url: str) -> None:
    answer = raw_get(public_url, "/?tab=compare&lane=onnx&lane=openai&prompt=" + "x" * 70_000)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414")
    assert b"This link is too long to open" in body
    assert raw_get(public_url, "/?tab=compare&prompt=" + "x" * 9000).startswith(b"HTTP/1.1 200")
