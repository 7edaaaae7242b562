"""gcpause: the cyclic collector off for a block, back on when the last block ends."""

from __future__ import annotations

import gc
import threading

import pytest

from imagewise.gcpause import paused


def test_nested_and_concurrent_blocks_share_one_pause() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still runs
    assert gc.isenabled()

    inside, release, seen = threading.Event(), threading.Event(), []

    def worker() -> None:
        with paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    with paused():
        pass
    seen.append(gc.isenabled())  # the worker's block still runs: off
    release.set()
    t.join(10)
    assert seen == [False] and gc.isenabled()


def test_an_error_ends_the_pause_and_a_collector_turned_off_stays_off() -> None:
    with pytest.raises(KeyError), paused():
        raise KeyError("x")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
