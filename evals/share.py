"""A share link for an evaluation's configuration: the set (a built-in name), lanes, preset,
limit and concurrency in the URL query, e.g.
``?tab=eval&set=math-word&eval_lane=onnx&eval_lane=llamacpp&preset=math&limit=20``.
An uploaded set is not part of a link (its file stays on the machine that ran it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from compare.lanes import MAX_LANES
from evals.sets import BUILTIN


class EvalLinkError(ValueError):
    """A link that cannot be turned back into an evaluation setup."""


@dataclass
class EvalConfig:
    set_name: str
    lanes: list[str]
    preset: str = ""
    limit: int | None = None
    concurrency: int = 0
    problems: list[str] = field(default_factory=list)


def encode_config(config: EvalConfig) -> str:
    pairs: list[tuple[str, str]] = [("tab", "eval")]
    if config.set_name in BUILTIN:
        pairs.append(("set", config.set_name))
    pairs += [("eval_lane", lane) for lane in config.lanes if lane.strip()]
    if config.preset:
        pairs.append(("preset", config.preset))
    if config.limit:
        pairs.append(("limit", str(config.limit)))
    if config.concurrency:
        pairs.append(("concurrency", str(config.concurrency)))
    return urlencode(pairs)


def decode_config(params: Mapping[str, str] | list[tuple[str, str]]) -> EvalConfig:
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    values = dict(pairs)
    lanes = [v for k, v in pairs if k == "eval_lane" and v.strip()]
    if len(lanes) > MAX_LANES:
        raise EvalLinkError(f"the link names {len(lanes)} lanes; an evaluation runs at most {MAX_LANES}")
    problems = []
    name = values.get("set", "")
    if name and name not in BUILTIN:
        problems.append(f"set {name!r} is not a built-in set; pick or upload one")
        name = ""
    numbers: dict[str, int] = {}
    for key in ("limit", "concurrency"):
        raw = values.get(key, "").strip()
        if raw:
            if raw.isdigit():
                numbers[key] = int(raw)
            else:
                problems.append(f"{key}={raw!r} is not a whole number; ignored")
    return EvalConfig(
        name,
        lanes,
        values.get("preset", "")[:100],
        numbers.get("limit") or None,
        numbers.get("concurrency", 0),
        problems,
    )
