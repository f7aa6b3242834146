"""The gate for user-supplied backends, the request limits and admission, and the per-session
registry: pure decisions, tested without a server."""

from __future__ import annotations

import asyncio

import pytest

from backends.scripted import ScriptedBackend
from compare.lanes import backend_for_lane, parse_lane
from runtime.errors import Busy, InputError
from runtime.gate import BackendGate, BackendRefused
from runtime.limits import Admission, Limits
from runtime.registry import BackendRegistry
from runtime.settings import Endpoint, Settings, load_settings

PUBLIC = Settings(public=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "https://api.example.com/v1", "http://[::1]:8000"])
def test_public_gate_refuses_every_url(url: str) -> None:
    with pytest.raises(BackendRefused, match="public instance only uses its configured backends"):
        BackendGate(PUBLIC).check_url(url)


def test_public_gate_refuses_folders() -> None:
    with pytest.raises(BackendRefused, match="not a folder"):
        BackendGate(PUBLIC).check_folder("/etc")


@pytest.mark.parametrize(
    "name", ["qwen2.5:0.5b", "microsoft/Phi-4-mini-instruct", "phi4-mini:3.8b-q4_K_M", ""]
)
def test_model_names_pass(name: str) -> None:
    assert BackendGate(PUBLIC).check_model_name(name) == name


@pytest.mark.parametrize(
    "name", ["stub@http://127.0.0.1:9/v1", "http://evil/v1", "a b", "../../etc", "x#temperature=2", "/etc"]
)
def test_anything_but_a_model_name_is_refused(name: str) -> None:
    with pytest.raises(BackendRefused, match="must be a model name"):
        BackendGate(PUBLIC).check_model_name(name)


def test_allowlist_outside_public_mode() -> None:
    gate = BackendGate(Settings(allow_hosts=("gpu.lan", "*.example.com")))
    assert gate.check_url("http://gpu.lan:8000/v1")
    assert gate.check_url("https://a.example.com/v1")
    with pytest.raises(BackendRefused, match="not on this instance's allowlist"):
        gate.check_url("http://127.0.0.1:8000/v1")
    with pytest.raises(BackendRefused, match="credentials"):
        gate.check_url("http://user:pw@gpu.lan/v1")
    assert BackendGate(Settings()).check_url("http://127.0.0.1:8000/v1")  # no allowlist: a dev box


def test_limits_name_the_field_and_the_range() -> None:
    limits = Limits(max_prompt_chars=100, max_new_tokens=64, max_runs=5)
    assert limits.prompt("  hi  ") == "hi"
    for bad, words in [
        ("", "prompt is empty"),
        ("   \n", "prompt is empty"),
        ("x" * 101, "has 101 characters"),
    ]:
        with pytest.raises(InputError, match=words):
            limits.prompt(bad)
    with pytest.raises(InputError, match="must be text"):
        limits.prompt(None)
    with pytest.raises(InputError, match="max_new_tokens must be a whole number from 1 to 64"):
        limits.new_tokens(65)
    assert limits.runs("3") == 3
    for bad in ("x", 0, 6, 2.5, True, None):
        with pytest.raises(InputError, match="runs must be a whole number from 1 to 5"):
            limits.runs(bad)


def test_public_defaults_are_tighter_and_flags_still_win() -> None:
    open_ = load_settings({})
    public = load_settings({"SLM_PUBLIC": "1"})
    assert public.max_prompt_chars < open_.max_prompt_chars
    assert public.max_new_tokens_cap < open_.max_new_tokens_cap
    assert public.queue_size < open_.queue_size
    assert public.max_runs < open_.max_runs
    assert public.per_client < open_.per_client
    assert load_settings({"SLM_PUBLIC": "1", "SLM_MAX_NEW_TOKENS": "2048"}).max_new_tokens_cap == 2048
    assert load_settings({"SPACE_ID": "me/space"}).public


def test_admission_counts_per_client_and_overall() -> None:
    admission = Admission(total=3, per_client=2)
    with admission.enter("a"), admission.enter("a"):
        with pytest.raises(Busy, match="at most 2 per client"), admission.enter("a"):
            pass
        with admission.enter("b"), pytest.raises(Busy, match="server is busy"), admission.enter("c"):
            pass
    assert admission.running == 0
    with admission.enter("a"):  # every place came back
        assert admission.running == 1


def test_user_added_backends_belong_to_their_session() -> None:
    registry = BackendRegistry.with_backends(Settings(), ScriptedBackend(label="shared"))
    registry.add_endpoint(Endpoint("openai", "http://127.0.0.1:9/v1", name="mine"), session="alice")
    assert registry.labels("alice") == ["shared", "mine"]
    assert registry.labels("bob") == ["shared"]
    assert registry.labels() == ["shared"]
    with pytest.raises(KeyError, match="no backend named 'mine'"):
        registry.get("mine", "bob")
    assert registry.get("mine", "alice").name == "mine"
    assert not registry.is_shared("mine")
    asyncio.run(registry.remove("mine", "bob"))  # someone else cannot remove it
    assert registry.labels("alice") == ["shared", "mine"]


def test_typed_lane_specs_make_session_backends_and_public_mode_makes_none() -> None:
    registry = BackendRegistry.with_backends(Settings(), ScriptedBackend(label="onnx"))
    backend, model = backend_for_lane(parse_lane("openai:stub@127.0.0.1:9/v1"), registry, session="alice")
    assert model == "stub" and backend.name == "openai@http://127.0.0.1:9/v1"
    assert registry.labels("alice")[-1] == backend.name
    assert backend.name not in registry.labels("bob")

    public = BackendRegistry.with_backends(
        PUBLIC, ScriptedBackend(label="onnx"), ScriptedBackend(label="openai")
    )
    known = public.labels()
    for spec, words in [
        ("openai:stub@http://127.0.0.1:9/v1", "configured backends"),
        ("onnx:/etc", "not a folder"),
        ("openai:stub@x", "configured backends"),
    ]:
        with pytest.raises(BackendRefused, match=words):
            backend_for_lane(parse_lane(spec, known_labels=known), public, session="alice")
    assert public.labels("alice") == known  # nothing was added
    assert backend_for_lane(parse_lane("openai:phi4-mini", known_labels=known), public)[1] == "phi4-mini"


def test_the_client_behind_a_proxy_is_the_first_forwarded_address() -> None:
    from types import SimpleNamespace

    from app.api import client_of

    def request(peer: str, forwarded: str = "") -> object:
        headers = {"x-forwarded-for": forwarded} if forwarded else {}
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)

    assert client_of(request("10.0.0.7", "203.0.113.9, 10.0.0.7")) == "203.0.113.9"  # a Space's proxy
    assert client_of(request("127.0.0.1", "198.51.100.4")) == "198.51.100.4"
    # a public peer cannot name another client
    assert client_of(request("93.184.215.14", "127.0.0.1")) == "93.184.215.14"
    assert client_of(request("93.184.215.14")) == "93.184.215.14"
    assert client_of(None) == "local"
