"""``slm-playground eval``: run a prompt set on 1-4 lanes and print the leaderboard.

    slm-playground eval math-word --lane onnx --lane llamacpp:MODEL.gguf --limit 50
    slm-playground eval my_set.jsonl --lane onnx --lane vllm:MODEL@http://gpu:8000/v1 --json
    slm-playground eval math-word --lane onnx --concurrency 1,8      # batched vs one at a time
    slm-playground eval --recheck /tmp/slm-playground-evals/eval-....json

SET is a built-in set (``--list``) or a JSONL/CSV file. Every cell is written to a JSONL log as
it finishes and the run card beside it (paths on stderr). Exit status: 0 done, 1 when the
recheck disagrees, 2 when the setup is invalid (nothing was run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.card import EvalCard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", nargs="?", help="a built-in set name or a .jsonl/.csv file")
    parser.add_argument("--lane", action="append", default=[], metavar="SPEC", help="a lane, as in compare")
    parser.add_argument("--preset", default="", help="preset (default: the built-in set's own)")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N items")
    parser.add_argument(
        "--concurrency",
        default="0",
        help="items in flight per lane (0: 16 in-process, 4 remote); a list like 1,8 runs the set "
        "once per value and prints the wall times side by side",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one item may take")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None, help="default 0 (runs are seeded)")
    parser.add_argument("--no-probe", action="store_true", help="skip asking backends what they support")
    parser.add_argument("--out", type=Path, default=None, help="folder for the log and the card")
    parser.add_argument("--json", action="store_true", help="print lanes and items as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--list", action="store_true", help="list the built-in sets")
    parser.add_argument("--recheck", metavar="CARD", type=Path, help="regrade a stored card (or its .jsonl)")


def run(args: argparse.Namespace, *, registry: Any = None, presets: Any = None) -> int:
    from evals.sets import BUILTIN

    if args.list:
        for name, (_, preset, description) in BUILTIN.items():
            print(f"{name:16} preset {preset:10} {description}")
        return 0
    if args.recheck:
        return recheck_command(args.recheck)
    if not args.set or not args.lane:
        print("slm-playground eval: give a SET and at least one --lane (or --recheck CARD)", file=sys.stderr)
        return 2
    try:
        levels = [int(v) for v in str(args.concurrency).split(",") if v.strip()]
    except ValueError:
        print("slm-playground eval: --concurrency takes whole numbers, e.g. 8 or 1,8", file=sys.stderr)
        return 2
    import asyncio

    return asyncio.run(_main(args, levels or [0], registry, presets))


async def _main(args: argparse.Namespace, levels: list[int], registry: Any, presets: Any) -> int:
    from evals.service import EvalSetup, EvalSetupError, prepare
    from evals.sets import SetError, resolve_set

    own = registry is None
    if registry is None:
        from compare.cli import _default_registry

        registry = _default_registry()
    if presets is None:
        from presets import load_catalog

        presets = load_catalog(registry.settings.presets_dir)
    options = {
        name: getattr(args, name)
        for name in ("temperature", "max_new_tokens", "seed")
        if getattr(args, name) is not None
    }
    cards: list[EvalCard] = []
    try:
        eval_set = resolve_set(args.set)
        for level in levels:
            setup = EvalSetup(
                eval_set,
                list(args.lane),
                preset=args.preset,
                options=options,
                limit=args.limit,
                concurrency=level,
                timeout_s=args.timeout,
                probe=not args.no_probe and not cards,
            )
            evaluation = prepare(setup, registry, presets, out_dir=args.out)
            if not args.quiet:
                print(f"cells: {evaluation.log_path}\ncard:  {evaluation.card_path}", file=sys.stderr)
            progress = _progress(evaluation, args.quiet)
            cards.append(await evaluation.execute(progress))
    except (SetError, EvalSetupError) as exc:
        print(f"slm-playground eval: {exc}", file=sys.stderr)
        return 2
    finally:
        if own:
            await registry.aclose()
    card = cards[-1]
    if args.json:
        print(json.dumps(card.contract(), indent=2))
    else:
        print(card.to_markdown())
        if len(cards) > 1:
            print("\n" + concurrency_table(cards))
    return 0


def _progress(evaluation: Any, quiet: bool) -> Any:
    def show(cell: Any) -> None:
        if quiet:
            return
        p = evaluation.run.progress()
        eta = f", ETA {p.eta_s:.0f} s" if p.eta_s is not None else ""
        print(
            f"[{p.done}/{p.total}] lane {cell.lane + 1} item {cell.item + 1}: {cell.verdict}"
            f" ({cell.completion_tokens or 0} tokens, {p.elapsed_s:.0f} s{eta})",
            file=sys.stderr,
        )

    return show


def concurrency_table(cards: list[EvalCard]) -> str:
    """Wall time per lane at each concurrency, and the speed-up over the first."""
    rows = ["| lane | items in flight | wall | items/s | speed-up | accuracy |", "|---|---|---|---|---|---|"]
    for lane in range(len(cards[0].lanes)):
        first = cards[0].lanes[lane].wall_s
        for card in cards:
            record, summary = card.lanes[lane], card.lane_summary(lane)
            wall = record.wall_s or 0.0
            speedup = f"{first / wall:.2f}x" if first and wall else "–"
            rate = summary["total"] / wall if wall else 0.0
            accuracy = "–" if summary["accuracy"] is None else f"{summary['accuracy']:.1%}"
            cells = f"{record.concurrency} | {wall:.1f} s | {rate:.2f} | {speedup} | {accuracy}"
            rows.append(f"| {record.title} | {cells} |")
    loads = ", ".join(f"{c.machine.get('load_start')} → {c.machine.get('load_end')}" for c in cards)
    return "\n".join(rows) + f"\n\nLoad average (1, 5, 15 min) per run: {loads}"


def recheck_command(path: Path) -> int:
    from evals.card import EvalCard
    from evals.service import recheck

    try:
        card = EvalCard.load(path)
    except (OSError, ValueError) as exc:
        print(f"slm-playground eval --recheck: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    rows = recheck(card)
    print("| lane | answers | correct (stored) | correct (regraded) | same |\n|---|---|---|---|---|")
    for title, total, stored, regraded in rows:
        print(f"| {title} | {total} | {stored} | {regraded} | {'yes' if stored == regraded else 'NO'} |")
    return 0 if all(stored == regraded for _, _, stored, regraded in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slm-playground eval", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
