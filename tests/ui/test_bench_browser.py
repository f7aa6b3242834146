"""`bench browser` on the real default model: one turn, a rate read from the page's metrics line."""

from __future__ import annotations

import argparse

import pytest

from bench import browser as bench_browser

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.slow]


def test_bench_browser_reads_the_rate_from_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    if not bench_browser.CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    parser = argparse.ArgumentParser()
    bench_browser.add_arguments(parser)
    assert bench_browser.run(parser.parse_args(["--turns", "1"])) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    turn, rate, app_cpu, browser_cpu = (float(c) for c in row.split("|"))
    assert turn == 1 and 0 < rate < 1000
    assert app_cpu > 0 and browser_cpu > 0  # both processes were found and did work
