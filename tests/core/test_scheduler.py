"""The generic scheduler (engines/scheduler.py) with a fake engine: no model, fast."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from engines.scheduler import CLIENT, Job, QueueFull, Scheduler


class CountJob(Job):
    def __init__(self, tag: str, tokens: int) -> None:
        super().__init__()
        self.tag, self.left = tag, tokens


class FakeEngine:
    """Each step emits one token per running job; a gate lets a test hold the steps."""

    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.released: list[str] = []
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.delay_s = 0.0

    def admit(self, job: Job) -> None:
        assert isinstance(job, CountJob)
        self.admitted.append(job.tag)

    def step(self, jobs: list[Job]) -> int:
        self.gate.wait(5)
        time.sleep(self.delay_s)
        self.batches.append(len(jobs))
        for job in jobs:
            assert isinstance(job, CountJob)
            job.emit(f"{job.tag}:{job.left}")
            job.left -= 1
            if job.left == 0:
                job.end()
        return len(jobs)

    def release(self, job: Job) -> None:
        assert isinstance(job, CountJob)
        self.released.append(job.tag)


async def drain(scheduler: Scheduler, job: Job) -> list[str]:
    return [item async for item in scheduler.stream(job)]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


async def test_jobs_share_steps_and_each_gets_its_own_events(engine: FakeEngine) -> None:
    scheduler = Scheduler(engine, name="fake", max_batch=4)
    try:
        results = await asyncio.gather(*(drain(scheduler, CountJob(t, 3)) for t in "abcd"))
    finally:
        scheduler.close()
    assert results == [[f"{t}:3", f"{t}:2", f"{t}:1"] for t in "abcd"]
    assert max(engine.batches) > 1
    assert sorted(engine.released) == list("abcd")


async def test_beyond_the_batch_jobs_wait_in_order_and_beyond_the_queue_are_refused(
    engine: FakeEngine,
) -> None:
    engine.gate.clear()
    scheduler = Scheduler(engine, name="fake", max_batch=1, max_queue=2)
    jobs = [CountJob(t, 2) for t in "abc"]
    tasks = [asyncio.create_task(drain(scheduler, j)) for j in jobs]
    await asyncio.sleep(0.05)
    assert scheduler.position(jobs[0]) == 0
    assert [scheduler.position(j) for j in jobs[1:]] == [1, 2]
    with pytest.raises(QueueFull) as refused:
        await drain(scheduler, CountJob("d", 1))
    assert refused.value.retry_after_s >= 1
    engine.gate.set()
    await asyncio.gather(*tasks)
    scheduler.close()
    assert engine.admitted == list("abc")


async def test_one_client_with_many_requests_does_not_starve_another(engine: FakeEngine) -> None:
    engine.gate.clear()
    scheduler = Scheduler(engine, name="fake", max_batch=2, max_queue=16)

    async def as_client(client: str, tag: str) -> list[str]:
        CLIENT.set(client)  # as the engine server does for each connection's task
        return await drain(scheduler, CountJob(tag, 2))

    greedy = [asyncio.create_task(as_client("greedy", f"g{i}")) for i in range(8)]
    await asyncio.sleep(0.05)
    polite = asyncio.create_task(as_client("polite", "p"))
    await asyncio.sleep(0.05)
    engine.gate.set()
    await asyncio.gather(*greedy, polite)
    scheduler.close()
    # the first two slots that freed went one to each client: the polite job did not wait
    # behind the six greedy jobs queued before it
    assert engine.admitted.index("p") <= 3


async def test_closing_the_stream_cancels_the_job_and_frees_its_slot(engine: FakeEngine) -> None:
    engine.delay_s = 0.002
    scheduler = Scheduler(engine, name="fake", max_batch=2)
    other = asyncio.create_task(drain(scheduler, CountJob("long", 300)))
    stream = scheduler.stream(CountJob("stopped", 1000))
    first = await anext(stream)
    assert first == "stopped:1000"
    await stream.aclose()  # returns once the scheduler released the job
    assert "stopped" in engine.released and "long" not in engine.released
    assert len(await other) == 300
    scheduler.close()


async def test_a_queued_job_that_is_cancelled_never_runs(engine: FakeEngine) -> None:
    engine.gate.clear()
    scheduler = Scheduler(engine, name="fake", max_batch=1)
    running = asyncio.create_task(drain(scheduler, CountJob("a", 2)))
    queued = asyncio.create_task(drain(scheduler, CountJob("b", 2)))
    await asyncio.sleep(0.05)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    engine.gate.set()
    await running
    scheduler.close()
    assert engine.admitted == ["a"]


async def test_a_failing_step_fails_its_jobs_not_the_thread(engine: FakeEngine) -> None:
    scheduler = Scheduler(engine, name="fake", max_batch=2)
    original = engine.step
    engine.step = lambda jobs: (_ for _ in ()).throw(RuntimeError("boom"))  # type: ignore[method-assign]
    with pytest.raises(Exception, match="boom"):
        await drain(scheduler, CountJob("a", 2))
    engine.step = original  # type: ignore[method-assign]
    assert await drain(scheduler, CountJob("b", 1)) == ["b:1"]
    scheduler.close()


async def test_one_client_fills_at_most_half_the_queue_while_others_wait(engine: FakeEngine) -> None:
    engine.gate.clear()
    scheduler = Scheduler(engine, name="fake", max_batch=1, max_queue=4)

    async def as_client(client: str, tag: str) -> list[str]:
        CLIENT.set(client)
        return await drain(scheduler, CountJob(tag, 1))

    other = asyncio.create_task(as_client("other", "o"))  # runs
    await asyncio.sleep(0.05)
    greedy = [asyncio.create_task(as_client("greedy", f"g{i}")) for i in range(4)]
    await asyncio.sleep(0.05)
    refused = [t for t in greedy if t.done()]
    assert len(refused) == 2 and all(isinstance(t.exception(), QueueFull) for t in refused)
    late = asyncio.create_task(as_client("late", "l"))
    await asyncio.sleep(0.05)
    assert not late.done(), "another client still got in line"
    engine.gate.set()
    assert await late == ["l:1"] and await other == ["o:1"]
    await asyncio.gather(*(t for t in greedy if t not in refused))
    scheduler.close()
