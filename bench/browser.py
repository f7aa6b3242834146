"""`slm-playground bench browser`: what a browser showing the stream costs the model.

Runs `python -m app ui` in its own process, drives the Reasoning tab in headless chromium
(Debian's, through Playwright) for a few turns, and reads each answer's decode tokens/s from
its metrics line, with the CPU seconds the app process and chromium used during the turn. On a
small machine the browser re-rendering the chat takes cores the model needs; ``--clear``
clears the chat before each turn, to tell the history's share from the stream's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from pathlib import Path

from bench.app import free_port, ui_command, wait_for_page

CHROMIUM = Path("/usr/bin/chromium")
RATE = re.compile(r"([\d.]+) tok/s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="ONNX model folder (default: the embedded default)")
    parser.add_argument("--home", type=Path, help="model home (SLM_HOME)")
    parser.add_argument("--turns", type=int, default=3, help="chat turns to time")
    parser.add_argument("--clear", action="store_true", help="clear the chat before each turn")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # clock ticks; 100 per second on Linux


def _chromium_cpu_s() -> float:
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "chrom" in (proc / "comm").read_text():
                total += _cpu_s(int(proc.name))
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    return total


def run(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium")
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(ui_command(args, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_for_page(url, time.perf_counter())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            page.goto(url)
            page.get_by_role("tab", name="Reasoning").click()
            chat = page.locator("#chat-reasoning")
            for turn in range(args.turns):
                if args.clear:
                    page.locator("#clear-reasoning").click()
                    while RATE.findall(chat.inner_text()):
                        time.sleep(0.1)
                done_before = len(RATE.findall(chat.inner_text()))
                app_cpu, browser_cpu = _cpu_s(server.pid), _chromium_cpu_s()
                page.locator("#prompt-reasoning textarea").fill(
                    f"Write a 150-word story about a robot, number {turn + 1}."
                )
                page.locator("#send-reasoning").click()
                deadline = time.monotonic() + 180
                while len(RATE.findall(text := chat.inner_text())) <= done_before:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no metrics line within 180 s")
                    time.sleep(0.2)
                rows.append(
                    (
                        turn + 1,
                        float(RATE.findall(text)[-1]),
                        _cpu_s(server.pid) - app_cpu,
                        _chromium_cpu_s() - browser_cpu,
                    )
                )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"\nReasoning tab in headless chromium, {args.turns} turns"
        f"{', chat cleared before each' if args.clear else ', one growing chat'}\n"
    )
    print("turn | decode tok/s (metrics line) | app CPU s | chromium CPU s")
    print("-----+-----------------------------+-----------+---------------")
    for turn, rate, app_s, browser_s in rows:
        print(f"{turn:4} | {rate:27.1f} | {app_s:9.1f} | {browser_s:14.1f}")
    return 0
