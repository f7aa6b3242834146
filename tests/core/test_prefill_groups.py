"""Which waiting prompts the next prefill run feeds, and how many tokens each (no model needed)."""

from __future__ import annotations

from backends.base import ChatRequest, Message, SamplingOptions
from engines.onnx_jobs import PREFILL_CHUNK, OnnxJob, _prefill_group


def feeding(*lengths: int) -> list[OnnxJob]:
    """Jobs, oldest first, with that many prompt tokens still to feed."""
    jobs = []
    for n in lengths:
        request = ChatRequest(messages=(Message(role="user", content="hi"),), options=SamplingOptions())
        job = OnnxJob(request, list(range(n + 5)), 16)
        job.feed = list(range(n))
        jobs.append(job)
    return jobs


def test_all_waiting_prompts_share_a_run_of_the_shortest_ones_length() -> None:
    jobs = feeding(30, 12, 45, 20)
    group, size = _prefill_group(jobs, room=256)
    assert group == jobs and size == 12


def test_a_run_feeds_no_row_more_than_a_chunk() -> None:
    jobs = feeding(500, 300)
    group, size = _prefill_group(jobs, room=1024)
    assert group == jobs and size == PREFILL_CHUNK


def test_when_the_room_is_short_the_oldest_prompts_go_first() -> None:
    jobs = feeding(30, 30, 30, 30, 30)
    group, size = _prefill_group(jobs, room=64)
    assert group == jobs[:2] and size == 30


def test_a_short_newer_prompt_joins_the_run_when_all_fit() -> None:
    jobs = feeding(100, 100, 4)
    assert _prefill_group(jobs, room=128) == (jobs, 4)  # the short one's answer starts now


def test_rows_are_dropped_newest_first_until_a_chunk_each_fits() -> None:
    jobs = feeding(100, 100, 100)
    assert _prefill_group(jobs, room=128) == (jobs[:2], PREFILL_CHUNK)


def test_one_prompt_alone_is_cut_to_the_room_and_always_makes_progress() -> None:
    (job,) = feeding(100)
    assert _prefill_group([job], room=40) == ([job], 40)
    assert _prefill_group([job], room=0) == ([job], 1)
