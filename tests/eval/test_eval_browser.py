"""The Eval tab in headless chromium: upload a set, run two lanes, watch progress, filter to
disagreements, open an item, export CSV; a bad file gets its line; Stop keeps finished items.

Screenshot: /tmp/shots/eval.png (looked at by eye; a copy is in the engineer's notes).
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.sets import load_builtin
from tests.eval.conftest import AnswerBackend, registry_of
from tests.eval.test_service import SAMPLE
from tests.support.browser import page_in
from tests.ui.conftest import running_app

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SHOTS = Path("/tmp/shots")
ITEMS = 6


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    page = page_in(browser, 1400, 1600, timeout_ms=60_000)
    yield page
    page.context.close()


def two_lanes() -> tuple[AnswerBackend, AnswerBackend]:
    """ "sample" answers the first items as in SAMPLE; "half" agrees with it on even items only."""
    items = load_builtin("math-word").items[:ITEMS]
    answers = {item.prompt: text for item, (text, _) in zip(items, SAMPLE, strict=False)}
    halves = {item.prompt: (text if i % 2 == 0 else "Final answer: 0") for i, (item, text) in
              enumerate(zip(items, answers.values(), strict=True))}  # fmt: skip
    return (
        # slow enough (about 2 s an item) that the page shows progress between refreshes
        AnswerBackend("sample", lambda p: answers.get(p, "Final answer: 0"), delay_s=0.3),
        AnswerBackend("half", lambda p: halves.get(p, "Final answer: 0"), delay_s=0.3),
    )


def write_set(folder: Path) -> Path:
    path = folder / "upload.jsonl"
    items = load_builtin("math-word").items[:ITEMS]
    path.write_text("".join(json.dumps({"prompt": i.prompt, "reference": i.reference}) + "\n" for i in items))
    return path


def rows(page) -> int:
    """Data rows of the matrix (the grid's row count includes its header row)."""
    return int(page.locator("#eval-matrix [role=grid]").get_attribute("aria-rowcount")) - 1


def test_upload_run_two_lanes_filter_open_an_item_and_export_csv(page, tmp_path: Path) -> None:
    with running_app(registry=registry_of(*two_lanes())) as url:
        page.goto(url)
        page.get_by_role("tab", name="Eval").click()
        page.locator("#eval-upload input[type=file]").set_input_files(str(write_set(tmp_path)))
        page.locator("#eval-set-note").get_by_text(f"{ITEMS} items").wait_for()
        page.locator("#eval-run").click()
        page.wait_for_function(  # progress while it runs: a bar and items done, before the end
            "() => { const t = document.querySelector('#eval-count')?.innerText || '';"
            " return /^[1-9]\\d*\\/12 items done/.test(t) && !t.startsWith('12/'); }"
        )
        assert page.locator("#eval-bar").count() == 1
        page.locator("#eval-progress").get_by_text("finished").wait_for()
        assert "12/12 items done" in page.locator("#eval-progress").inner_text()
        board = page.locator("#eval-leaderboard").inner_text()
        assert "sample" in board and "half" in board and "5/6" in board

        assert rows(page) == ITEMS
        page.locator("#eval-filter").get_by_text("disagreements").click()
        grid = page.locator("#eval-matrix [role=grid]")
        playwright.expect(grid).to_have_attribute("aria-rowcount", str(ITEMS // 2 + 1))
        page.locator("#eval-matrix [role=gridcell]").nth(1).click()  # row 1, its prompt
        page.locator("#eval-detail").get_by_text("Steps checked").first.wait_for()
        assert "Item 2" in page.locator("#eval-detail").inner_text()  # the first odd item

        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "eval.png"), full_page=True)
        with page.expect_download() as download:
            page.locator("#eval-csv").click()
        exported = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
        assert len(exported) == 2 * ITEMS
        assert {r["lane"] for r in exported} == {"sample", "half"}
        assert sum(r["verdict"] == "correct" for r in exported if r["lane"] == "sample") == 5


def test_a_bad_file_is_refused_with_its_line_number(page, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine", "reference": "1"}\n{"prompt": "broken", "reference": 2\n')
    with running_app(registry=registry_of(*two_lanes())) as url:
        page.goto(url)
        page.get_by_role("tab", name="Eval").click()
        page.locator("#eval-upload input[type=file]").set_input_files(str(bad))
        page.locator("#eval-set-note").get_by_text("line 2: not valid JSON").wait_for()
        page.locator("#eval-run").click()  # running it anyway changes nothing but says why
        page.locator("#eval-set-note").get_by_text("line 2").wait_for()
        assert rows(page) == 0


def test_stop_keeps_the_finished_items(page, tmp_path: Path) -> None:
    lane = AnswerBackend("hold", lambda _p: "Final answer: 1")
    lane.release = asyncio.Event()  # never set: the HOLD items wait until Stop
    path = tmp_path / "hold.jsonl"
    prompts = ["one", "two", "three HOLD", "four HOLD"]
    path.write_text("".join(json.dumps({"prompt": p, "reference": "1"}) + "\n" for p in prompts))
    with running_app(registry=registry_of(lane)) as url:
        page.goto(url)
        page.get_by_role("tab", name="Eval").click()
        page.locator("#eval-upload input[type=file]").set_input_files(str(path))
        page.locator("#eval-set-note").get_by_text("4 items").wait_for()
        page.locator("#eval-run").click()
        page.locator("#eval-count").get_by_text("2/4 items done").wait_for()
        page.locator("#eval-stop").click()
        page.locator("#eval-progress").get_by_text("stopped").wait_for()
        assert rows(page) == 2
        assert "2/2" in page.locator("#eval-leaderboard").inner_text()
        with page.expect_download() as download:
            page.locator("#eval-json").click()
        card = json.loads(Path(download.value.path()).read_text())
        assert card["stopped"] and sorted(c["item"] for c in card["cells"]) == [0, 1]
