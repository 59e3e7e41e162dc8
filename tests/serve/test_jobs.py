"""dfer.serve.jobs: the SQLite job store's claim, re-queue, cancel and recovery rules."""

import pytest

from dfer.serve import JobStore
from dfer.serve.params import QueuedParams


@pytest.fixture
def store(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    store.create("a", QueuedParams(), "a.mp4")
    store.create("b", QueuedParams(), "b.mp4")
    return store


def test_jobs_are_claimed_oldest_first(store):
    assert store.claim().id == "a"


def test_a_requeued_job_goes_behind_jobs_with_fewer_attempts(store):
    store.claim()
    assert store.requeue("a")  # its worker died: counted
    assert store.claim().id == "b"
    assert store.claim().id == "a" and store.get("a").attempts == 2


def test_a_cancelled_running_job_tells_its_worker_on_its_next_report(store):
    store.claim()
    assert store.cancel("a") == "running" and store.status("a") == "cancelled"
    assert not store.progress("a", 0.5) and not store.finish("a")


def test_a_job_the_server_stopped_on_too_often_fails_with_the_reason(store):
    store.claim()
    store.requeue("a")
    store.claim()
    store.claim()  # "a" again, its second attempt
    again, failed = store.recover_interrupted(max_attempts=2)
    assert (again, failed) == (["b"], ["a"])  # b had one attempt left, a none
    assert store.get("a").error == "the server stopped 2 times while running this video"


def test_an_unknown_job_can_be_neither_cancelled_nor_deleted(store):
    assert store.cancel("nope") is None and not store.delete("nope")
