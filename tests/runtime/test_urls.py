"""One reading of a base URL: the env reader, the lane parser and the Backends form agree."""

from __future__ import annotations

import pytest

from app.backends_view import endpoint_from_form
from compare.lanes import parse_lane
from runtime.kinds import endpoints_from_env
from runtime.urls import normalise_base_url


def test_trimmed_completed_and_without_a_trailing_slash() -> None:
    assert normalise_base_url("  gpu.lan:8000/v1/ ") == "http://gpu.lan:8000/v1"
    assert normalise_base_url("HTTPS://Box/") == "https://Box"
    assert normalise_base_url("box:11434", default_scheme="https://") == "https://box:11434"


def test_a_form_refuses_what_it_would_have_to_guess() -> None:
    for typed in ("gpu.lan:8000", "ftp://gpu.lan"):
        with pytest.raises(ValueError, match="http:// or https://"):
            normalise_base_url(typed, default_scheme=None)


def test_env_lane_and_form_give_one_server_one_url() -> None:
    typed = "http://gpu.lan:8000/v1/"
    from_env = endpoints_from_env({"VLLM_BASE_URL": typed})
    assert [e.url for e in from_env] == ["http://gpu.lan:8000/v1"]
    assert parse_lane(f"vllm:phi@{typed}").url == "http://gpu.lan:8000/v1"
    assert endpoint_from_form("vllm", typed, "", "", "", []).url == "http://gpu.lan:8000/v1"
