from backends.scripted import ScriptedBackend
from bench.engine import measure_backend
from bench.prompts import PROMPTS


async def test_any_backend_gets_the_same_measurements() -> None:
    backend = ScriptedBackend(delay_s=0.005)
    row = await measure_backend(backend, runs=1, max_new=16)
    # warm-up + the prompt set + an 8-turn chat, all through Backend.chat
    assert len(backend.requests) == 1 + len(PROMPTS) + 8
    assert len(row["turn_ttft_s"]) == 8
    assert row["turn_prompt_tokens"] == sorted(row["turn_prompt_tokens"])  # the chat grows
    assert row["decode_tok_s"] > 0 and row["ttft_s"] >= 0
    assert row["tokens"] == len(PROMPTS) * 4  # the scripted reply has 4 chunks
