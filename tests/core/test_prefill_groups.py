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


def test_prompts_of_the_oldest_ones_length_share_its_run() -> None:
    jobs = feeding(20, 12, 20, 45, 20)
    group, size = _prefill_group(jobs, room=256)
    assert group == [jobs[0], jobs[2], jobs[4]] and size == 20


def test_a_shorter_newer_prompt_waits_rather_than_cut_the_oldest_ones_chunk() -> None:
    jobs = feeding(30, 12)
    assert _prefill_group(jobs, room=256) == ([jobs[0]], 30)


def test_long_prompts_share_full_chunks_whatever_their_lengths() -> None:
    jobs = feeding(500, 300, 20, 64)
    group, size = _prefill_group(jobs, room=1024)
    assert group == [jobs[0], jobs[1], jobs[3]] and size == PREFILL_CHUNK


def test_when_the_room_is_short_the_oldest_prompts_go_first() -> None:
    jobs = feeding(30, 30, 30, 30, 30)
    assert _prefill_group(jobs, room=64) == (jobs[:2], 30)


def test_one_prompt_alone_is_cut_to_the_room_and_always_makes_progress() -> None:
    (job,) = feeding(100)
    assert _prefill_group([job], room=40) == ([job], 40)
    assert _prefill_group([job], room=0) == ([job], 1)
