"""``slm-playground verify``: JSON lines in ({prompt, gold, response}), one verdict line out per input.

Output: {"final": "correct"|"incorrect"|"unverifiable", "claims": [{"text", "verdict", "expected"?}],
plus "verdict" (the detailed one), "confident" (false when the two readers took different answers
from the response, only Math-Verify could read it, Math-Verify ran out of its CPU time, or the
checker failed), "answer", "notes" (the reasons; the first wrong step first), "timed_out" (the wall
backstop stopped it) and "checker_failed" (an exception inside the checker: a bug)}. A bad input
line gets {"error": ...} and the batch goes on; the exit status is 1 when any line was bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default="-", help="JSON-lines file ('-' or omitted: stdin)")
    parser.add_argument("-o", "--output", default="-", help="where to write the verdicts ('-': stdout)")
    parser.add_argument("--budget", type=float, default=3.0, help="CPU seconds per response (the worker's)")
    parser.add_argument("--markdown", action="store_true", help="also add the chat rendering as 'markdown'")


def _records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"line {number}: not JSON ({exc.msg})"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("response"), str):
            yield number, f"line {number}: expected an object with a string 'response'"
            continue
        for key in ("prompt", "gold"):
            if record.get(key) is not None and not isinstance(record[key], str | int | float):
                yield number, f"line {number}: '{key}' must be a string, a number or null"
                break
        else:
            yield number, record


def verify_lines(lines: Iterable[str], out: TextIO, budget_s: float = 3.0, markdown: bool = False) -> int:
    """Verify each JSON line and write one result line each; returns the number of bad lines."""
    from mathcheck.sandbox import verify_response
    from mathcheck.verify import render_markdown

    bad = 0
    for _number, record in _records(lines):
        if isinstance(record, str):
            bad += 1
            out.write(json.dumps({"error": record}, ensure_ascii=False) + "\n")
            continue
        gold = record.get("gold")
        prompt = record.get("prompt")
        result = verify_response(
            record["response"],
            prompt=None if prompt is None else str(prompt),
            gold=None if gold is None else str(gold),
            budget_s=budget_s,
        )
        line = result.to_json()
        if "id" in record:
            line = {"id": record["id"], **line}
        if markdown:
            line["markdown"] = render_markdown(result)
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        out.flush()
    return bad


def run(args: argparse.Namespace) -> int:
    try:
        source: TextIO = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"verify: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        target: TextIO = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"verify: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        bad = verify_lines(source, target, args.budget, args.markdown)
    finally:
        if source is not sys.stdin:
            source.close()
        if target is not sys.stdout:
            target.close()
    if bad:
        print(f"verify: {bad} input line(s) could not be read (see the 'error' lines)", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mathcheck.cli", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
