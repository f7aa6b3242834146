"""A prepared folder's native library follows the sources: a new version's kernels reach
folders built by an older one, without rebuilding the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import native_ops

pytestmark = pytest.mark.skipif(native_ops.missing_requirement() is not None, reason="no native build here")


def test_a_library_from_older_sources_is_rebuilt_once(tmp_path: Path) -> None:
    native_ops.build_library(tmp_path)
    recorded = tmp_path / native_ops.SOURCE_FILE
    assert recorded.read_text().strip() == native_ops.source_digest()
    assert native_ops.refresh_library(tmp_path) is False  # up to date: nothing to do

    recorded.write_text("0123456789abcdef\n")  # as a folder built by an older version
    before = (tmp_path / native_ops.LIBRARY_NAME).stat().st_ino
    assert native_ops.refresh_library(tmp_path) is True
    assert (tmp_path / native_ops.LIBRARY_NAME).stat().st_ino != before  # replaced, not rewritten in place
    assert recorded.read_text().strip() == native_ops.source_digest()
    assert native_ops.refresh_library(tmp_path) is False


def test_where_it_cannot_be_rebuilt_the_old_library_stays(tmp_path: Path, monkeypatch) -> None:
    native_ops.build_library(tmp_path)
    (tmp_path / native_ops.SOURCE_FILE).unlink()  # built before digests were recorded
    library = (tmp_path / native_ops.LIBRARY_NAME).read_bytes()
    monkeypatch.setattr(native_ops.os, "access", lambda path, mode: False)  # a read-only folder
    assert native_ops.refresh_library(tmp_path) is False
    monkeypatch.undo()

    def broken(out_dir: Path, **_: object) -> Path:
        raise native_ops.NativeBuildError("compiling failed: no space left on device")

    monkeypatch.setattr(native_ops, "build_library", broken)
    assert native_ops.refresh_library(tmp_path) is False
    assert (tmp_path / native_ops.LIBRARY_NAME).read_bytes() == library


def test_the_digest_covers_every_source_and_header() -> None:
    names = {p.name for p in native_ops.NATIVE.glob("*.[ch]")}
    assert {s.name for s in native_ops.SOURCES} <= names and any(n.endswith(".h") for n in names)
