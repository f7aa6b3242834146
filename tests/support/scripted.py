"""The scripted backend now lives in backends/scripted.py (bench app uses it too)."""

from backends.scripted import ScriptedBackend, ScriptedReply

__all__ = ["ScriptedBackend", "ScriptedReply"]
