"""`bench app` on a paced scripted backend: the three paths are measured on the same answers."""

from __future__ import annotations

import argparse
import re

import pytest

from bench import app as bench_app


def test_bench_app_measures_raw_http_and_gradio_client_paths(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench_app.add_arguments(parser)
    args = parser.parse_args(
        [
            "--scripted",
            "--prompts",
            "1",
            "--runs",
            "1",
            "--max-new-tokens",
            "60",
            "--load",
            "2",
            "--no-cold-start",
        ]
    )
    assert bench_app.run(args) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in out.splitlines()}
    for path in ("raw backend.chat", "app /chat, HTTP + SSE", "app /chat, gradio_client"):
        assert path in rows, out
    http, client = rows["app /chat, HTTP + SSE"], rows["app /chat, gradio_client"]
    assert float(http[4]) == float(client[4]) == 60  # every token of the scripted reply arrived
    assert http[5] == client[5] == "1/1"
    # 10 ms per token on the scripted backend: about 100 tok/s on every path (the app sends at
    # most 20 updates a second, so first-to-last update is known to +-50 ms of ~600 ms)
    for row in (rows["raw backend.chat"], http, client):
        assert 30 < float(row[3]) <= 125, row  # a coalescing client read 1800 here
    assert re.search(r"Load: 2 concurrent chats .* 2/2 complete", out)
