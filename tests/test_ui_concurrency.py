"""Per-generator gates: an LLM answer never holds up an extractive one."""
from __future__ import annotations

import threading

import pytest

from rag.server.concurrency import Gate, Gates, gate_name


def test_generators_map_to_their_own_gates():
    assert gate_name("extractive") == "fast"
    assert gate_name("openai") == "remote"
    assert gate_name("local") == gate_name("llamacpp") == gate_name("transformers") == "local"


def test_a_busy_local_model_gate_leaves_the_extractive_gate_open():
    gates = Gates()
    local = gates.for_generator("local")
    assert list(local.wait_turns(poll=0.01)) == []  # entered at once
    assert local.running == 1
    assert not local.try_enter(timeout=0)  # a second LLM request must wait ...
    fast = gates.for_generator("extractive")
    assert list(fast.wait_turns(poll=0.01)) == []  # ... an extractive one does not
    fast.leave()
    local.leave()
    assert local.running == 0 and fast.running == 0


def test_waiting_request_reports_how_many_are_ahead_and_enters_when_freed():
    gate = Gate("local", 1)
    assert gate.try_enter(timeout=0)
    waiter = gate.wait_turns(poll=0.01)
    assert next(waiter) == 0  # nobody else waiting, but the slot is taken
    assert gate.waiting == 1
    gate.leave()
    with pytest.raises(StopIteration):  # the slot is free: the waiter gets it
        while True:
            next(waiter)
    assert gate.running == 1 and gate.waiting == 0
    gate.leave()


def test_abandoned_waiter_is_no_longer_counted():
    gate = Gate("local", 1)
    gate.try_enter(timeout=0)
    waiter = gate.wait_turns(poll=0.01)
    next(waiter)
    waiter.close()  # the user went away
    assert gate.waiting == 0 and gate.running == 1


def test_gate_admits_at_most_its_limit_across_threads():
    gate = Gate("fast", 2)
    release = threading.Event()
    peak = []

    def worker():
        for _ in gate.wait_turns(poll=0.01):
            pass
        peak.append(gate.running)
        release.wait(5)
        gate.leave()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    while gate.running < 2:
        threading.Event().wait(0.01)
    assert not gate.try_enter(timeout=0)
    release.set()
    for t in threads:
        t.join(5)
    assert max(peak) <= 2 and gate.running == 0


def test_gate_rejects_a_zero_limit():
    with pytest.raises(ValueError, match="at least 1"):
        Gate("local", 0)


def test_a_bounded_queue_turns_requests_away_instead_of_queueing_them():
    from rag.server.concurrency import QueueFullError

    gate = Gate("local", 1)
    assert list(gate.wait_turns(poll=0.01, max_waiting=0)) == []  # a free slot: always admitted
    with pytest.raises(QueueFullError, match="busy"):
        next(gate.wait_turns(poll=0.01, max_waiting=0))  # full and no waiting allowed
    assert gate.waiting == 0
    waiter = gate.wait_turns(poll=0.01, max_waiting=1)
    assert next(waiter) == 0  # one may wait ...
    with pytest.raises(QueueFullError):
        next(gate.wait_turns(poll=0.01, max_waiting=1))  # ... a second may not
    gate.leave()
    assert list(waiter) == []  # the waiter got the slot
    gate.leave()
    assert gate.running == 0 and gate.waiting == 0
