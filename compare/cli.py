"""``slm-playground compare``: run one prompt on 2-4 lanes in parallel and print the run card.

    slm-playground compare --lane onnx --lane openai:MODEL@BASE_URL --lane ollama:MODEL@HOST \\
        --preset math --prompt "What is 17*23?" --runs 3 --json
    slm-playground compare --lane onnx --lane llamacpp:MODEL.gguf --preset math --prompt "..."

The lane kinds come from runtime.kinds (``--help`` lists those this install can run).

Different in-process engines run in turn (one at a time, the order alternating between runs),
after each model has loaded; the card says per lane what it did and how long loading took.

Exit status: 0 when every lane answered, 1 when some lane failed (the card is printed anyway),
2 when the setup is invalid (nothing was run).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.registry import BackendRegistry


def lane_help() -> str:
    """The --lane help, listing the kinds of runtime.kinds that this install can run."""
    from runtime.kinds import lane_help as kinds

    return (
        f"a lane: {kinds().replace(', ', ' | ')} | a configured backend label; append #SETTING=VALUE "
        "to vary one setting on this lane (e.g. '#temperature=0'). Give 2 to 4."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lane", action="append", default=[], metavar="SPEC", help=lane_help())
    parser.add_argument("--prompt", required=True, help="the prompt every lane answers")
    parser.add_argument("--preset", default="", help="preset name: system prompt + sampling settings")
    parser.add_argument("--system", default=None, help="system prompt (overrides the preset's)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the comparison N times (median/p95)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each lane may take")
    parser.add_argument("--gold", default="", help="expected final answer for the math verdict")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the run card as JSON")
    parser.add_argument("--quiet", action="store_true", help="no live progress on stderr")


def setup_from_args(args: argparse.Namespace) -> Any:
    from compare.share import ComparisonSetup

    options = {
        name: getattr(args, name)
        for name in ("temperature", "top_p", "top_k", "max_new_tokens", "seed")
        if getattr(args, name, None) is not None
    }
    return ComparisonSetup(
        lanes=list(args.lane),
        prompt=args.prompt,
        preset=args.preset,
        system_prompt=args.system,
        options=options,
        runs=args.runs,
        gold=args.gold,
    )


def _default_registry() -> BackendRegistry:
    from runtime.registry import BackendRegistry
    from runtime.settings import settings_from_env

    return BackendRegistry(settings_from_env(), defaults=True)  # "onnx", "llamacpp": the in-process defaults


def _load_presets(registry: BackendRegistry) -> Any:
    from presets import load_catalog

    return load_catalog(registry.settings.presets_dir)


def run(args: argparse.Namespace, *, registry: BackendRegistry | None = None, presets: Any = None) -> int:
    import asyncio

    from compare.service import SetupError, run_card_for

    own_registry = registry is None
    registry = registry or _default_registry()
    if presets is None and args.preset:
        presets = _load_presets(registry)

    def progress(run_index: int, update: Any) -> None:
        if update.finished and not args.quiet:
            loaded = f", loaded in {update.load_s:.1f} s before the clock" if update.load_s else ""
            note = f" {update.error}" if update.error else ""
            ran = f"; {update.note}" if update.note else ""
            print(
                f"run {run_index + 1}/{args.runs} lane {update.lane + 1}: {update.status}"
                f" ({update.tokens} tokens, {update.elapsed_s:.2f} s{loaded}){note}{ran}",
                file=sys.stderr,
            )

    async def main() -> Any:
        try:
            return await run_card_for(
                setup_from_args(args), registry, presets, timeout_s=args.timeout, on_update=progress
            )
        finally:
            if own_registry:
                await registry.aclose()

    try:
        card = asyncio.run(main())
    except (SetupError, ValueError) as exc:
        print(f"slm-playground compare: {exc}", file=sys.stderr)
        return 2
    print(card.to_json() if args.json else card.to_markdown())
    return 0 if all(lane.status == "done" for lane in card.lanes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slm-playground compare", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
