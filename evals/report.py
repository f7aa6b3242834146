"""Views of a card for the Eval tab (pure, no gradio): the matrix rows, its filters, one item's
full answers with their step checks."""

from __future__ import annotations

from typing import Any, Literal

from evals.card import Cell, EvalCard

Filter = Literal["all", "disagreements", "failures", "unverifiable"]
FILTERS: tuple[Filter, ...] = ("all", "disagreements", "failures", "unverifiable")
MARK = {"correct": "✓", "incorrect": "✗", "unverifiable": "?", "error": "⚠"}


def _normal(answer: str | None) -> str:
    return " ".join((answer or "").casefold().replace(",", "").split()).rstrip(".")


def disagree(cells: list[Cell]) -> bool:
    """Lanes disagree on an item when their verdicts or their extracted answers differ."""
    if len(cells) < 2:
        return False
    return len({c.verdict for c in cells}) > 1 or len({_normal(c.answer) for c in cells}) > 1


def item_cells(card: EvalCard, item: int) -> list[Cell]:
    return [c for lane in range(len(card.lanes)) if (c := card.cell(item, lane)) is not None]


def shown_items(card: EvalCard, which: str) -> list[int]:
    """Item indexes with at least one finished cell that pass the filter."""
    shown = []
    for record in card.items:
        cells = item_cells(card, record.index)
        if not cells:
            continue
        if (
            which == "all"
            or (which == "disagreements" and disagree(cells))
            or (which == "failures" and any(c.verdict in ("incorrect", "error") for c in cells))
            or (which == "unverifiable" and any(c.verdict == "unverifiable" for c in cells))
        ):
            shown.append(record.index)
    return shown


def matrix_headers(card: EvalCard) -> list[str]:
    headers = ["#", "prompt", "reference"]
    for i in range(len(card.lanes)):
        n = i + 1
        headers += [f"L{n} verdict", f"L{n} answer", f"L{n} TTFT s", f"L{n} tok/s", f"L{n} tokens"]
    return headers


def matrix_rows(card: EvalCard, items: list[int]) -> list[list[Any]]:
    rows = []
    for index in items:
        record = card.items[index]
        prompt = record.prompt if len(record.prompt) <= 80 else record.prompt[:77] + "…"
        row: list[Any] = [index + 1, prompt, record.reference or ""]
        for lane in range(len(card.lanes)):
            c = card.cell(index, lane)
            if c is None:
                row += ["…", "", "", "", ""]
                continue
            row += [
                f"{MARK.get(c.verdict, '')} {c.verdict}",
                (c.answer or "")[:60],
                "" if c.ttft_s is None else round(c.ttft_s, 2),
                "" if c.tokens_per_s is None else round(c.tokens_per_s, 1),
                "" if c.completion_tokens is None else c.completion_tokens,
            ]
        rows.append(row)
    return rows


def item_markdown(card: EvalCard, index: int) -> str:
    """One item in full: the prompt, the reference, and each lane's whole answer with its checks."""
    record = card.items[index]
    parts = [f"### Item {index + 1}", "", _quote(record.prompt), ""]
    if record.reference:
        parts += [f"**Reference:** `{record.reference}`", ""]
    for lane in card.lanes:
        c = card.cell(index, lane.index)
        parts.append(f"#### Lane {lane.index + 1}: {lane.title}")
        if c is None:
            parts += ["not run", ""]
            continue
        figures = [f"{c.completion_tokens} tokens" if c.completion_tokens is not None else ""]
        if c.ttft_s is not None:
            figures.append(f"TTFT {c.ttft_s:.2f} s")
        if c.tokens_per_s is not None:
            figures.append(f"{c.tokens_per_s:.1f} tok/s")
        head = f"**{MARK.get(c.verdict, '')} {c.verdict}**" + (f" · answer `{c.answer}`" if c.answer else "")
        parts += [head + " · " + " · ".join(f for f in figures if f), ""]
        if c.detail:
            parts += [f"*{c.detail}*", ""]
        if c.error:
            parts += [f"⚠ {c.error}", ""]
        if c.steps:
            parts += ["Steps checked:", ""]
            for step in c.steps:
                mark = {"ok": "✓", "wrong": "✗"}.get(step.get("verdict", ""), "·")
                expected = f" (expected {step['expected']})" if step.get("expected") is not None else ""
                parts.append(f"- {mark} `{step.get('text', '')}`{expected}")
            parts.append("")
        parts += [_quote(c.text or "(empty)"), ""]
    return "\n".join(parts)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}  " for line in text.splitlines()) or "> "  # two spaces: keep line breaks


def progress_html(done: int, total: int, elapsed_s: float, eta_s: float | None, lane: str) -> str:
    """A progress bar with items done and the estimated time left."""
    fraction = done / total if total else 0.0
    eta = f" · about {eta_s:.0f} s left" if eta_s is not None else ""
    return (
        f'<progress id="eval-bar" value="{fraction:.3f}" max="1" style="width:min(420px,70%)"></progress> '
        f'<span id="eval-count">{done}/{total} items done</span> · {elapsed_s:.0f} s{eta} · {lane}'
    )
