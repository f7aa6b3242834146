"""What every endpoint does to a body before its own model sees it: JSON with sane depth and
valid text, parameters this server does not implement accepted when they ask for nothing and
refused by name otherwise, and pydantic's errors turned into a RequestProblem naming the field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from serve.errors import RequestProblem

MAX_DEPTH = 48
"""Nesting a request may have (messages, tool schemas, response schemas): deeper is refused
before anything recurses over it."""


def _loc(path: tuple[int | str, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_values(raw: Any) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH and text that is not valid Unicode (a lone
    surrogate such as \\ud800 parses as JSON but cannot be encoded), naming where."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(raw, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise RequestProblem(
                f"{_loc(path[:3])}: nested more than {MAX_DEPTH} levels deep", param=_loc(path[:1])
            )
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))


def _check_text(text: str, path: tuple[int | str, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = _loc(path) or "the request"
        raise RequestProblem(
            f"{where}: not valid Unicode text ({exc.reason} at character {exc.start})",
            param=_loc(path) or None,
        ) from None


def load_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object a request sent, or a RequestProblem (415 for another content type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise RequestProblem(
            f"Content-Type {media!r} is not supported: send the body as application/json",
            status=415,
            code="unsupported_media_type",
        )
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestProblem(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestProblem(f"the request body is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(raw, dict):
        raise RequestProblem("the request body must be a JSON object")
    check_values(raw)
    return raw


NOTHING = object()
"""Marks a parameter that is accepted whatever its value (it changes nothing here)."""


def refuse_unsupported(raw: dict[str, Any], accepted: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """Drop the parameters this server does not implement when they ask for nothing (their
    defaults, zeros, nulls); refuse them, by name, when they ask for something."""
    out = dict(raw)
    for name, values in accepted.items():
        if name not in out:
            continue
        value = out.pop(name)
        if value is None or NOTHING in values:
            continue
        if not any(type(value) is type(v) and value == v for v in values) and not (
            isinstance(value, int | float) and not isinstance(value, bool) and value in values
        ):
            allowed = " or ".join(json.dumps(v) for v in values)
            raise RequestProblem(
                f"Unsupported parameter: {name}={json.dumps(value)[:80]} is not supported by this server "
                f"(it accepts only {allowed}, or leave it out)",
                param=name,
                code="unsupported_parameter",
            )
    return out


VLLM_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "repetition_penalty": (1,),
    "min_p": (0,),
    "min_tokens": (0,),
    "ignore_eos": (False,),
    "best_of": (1,),
    "use_beam_search": (False,),
    "length_penalty": (1,),
    "stop_token_ids": ([],),
    "skip_special_tokens": (True,),
    "spaces_between_special_tokens": (True,),
    "include_stop_str_in_output": (False,),
}
"""vLLM's sampling extensions that clients written for vLLM send with their default values."""

CHAT_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logit_bias": ({},),
    "store": (False,),
    "metadata": (NOTHING,),
    "service_tier": ("auto", "default"),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "reasoning_effort": (),
    "verbosity": (),
    "web_search_options": (),
    "functions": (),
    "function_call": (),
    "safety_identifier": (NOTHING,),
    "prompt_cache_key": (NOTHING,),
    "echo": (False,),
    "add_generation_prompt": (True,),
    "continue_final_message": (False,),
    **VLLM_DEFAULTS,
}
"""OpenAI chat parameters this server does not implement, with the values that ask for nothing."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    """Inside messages unknown fields are ignored, as OpenAI does (clients echo extras back)."""

    model_config = ConfigDict(extra="ignore")


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


_FORMAT_TAGS = {"text", "json_object", "json_schema"}


def _is_union_tag(part: str, before: int | str | None) -> bool:
    """pydantic puts the union member it tried into loc ("str", "literal[...]", "NamedToolChoice",
    a discriminator value after "response_format")."""
    if before == "response_format" and part in _FORMAT_TAGS:
        return True
    return part in _TYPE_TAGS or part[:1].isupper() or "[" in part or part.startswith("function-")


def _param_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_union_tag(part, loc[i - 1] if i else None):
            out += f".{part}" if out else part
    return out


def problem_from_validation(exc: ValidationError) -> RequestProblem:
    first = exc.errors(include_url=False)[0]
    param = _param_of(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return RequestProblem(f"{param}: {message}" if param else message, param=param or None)
