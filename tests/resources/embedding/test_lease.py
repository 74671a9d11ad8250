import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from resources.embedding import lease
from resources.embedding.lease import Gpu, holder_of, leased

GPUS = [Gpu("cuda:0", "GPU-aaaa"), Gpu("cuda:1", "GPU-bbbb")]


def test_two_holders_get_different_gpus_and_a_third_waits(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "POLL_SECONDS", 0.01)
    said: list[str] = []
    with (
        leased(GPUS, 1, "step a", said.append, tmp_path) as first,
        leased(GPUS, 1, "step b", said.append, tmp_path) as second,
    ):
        assert [first[0].device, second[0].device] == ["cuda:0", "cuda:1"]
        assert holder_of(tmp_path / "GPU-aaaa.lock").startswith("step a (pid ")
        got: list[list[Gpu]] = []

        def third() -> None:
            with leased(GPUS, 1, "step c", said.append, tmp_path) as gpus:
                got.append(gpus)

        waiting = threading.Thread(target=third)
        waiting.start()
        while not said:
            time.sleep(0.01)
        assert not got
    waiting.join(timeout=10)
    assert len(got) == 1 and got[0][0] in GPUS
    assert said[0].startswith("waiting for 1 free GPU(s) of 2; held: cuda:0 by step a (pid ")
    assert "cuda:1 by step b" in said[0]
    assert said[-1].startswith("GPU free after ")
    assert holder_of(tmp_path / "GPU-aaaa.lock") == "nobody"


def test_a_step_needing_every_gpu_takes_all_or_none(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "POLL_SECONDS", 0.01)
    said: list[str] = []
    done = threading.Event()
    with leased(GPUS[1:], 1, "step b", said.append, tmp_path):

        def both() -> None:
            with leased(GPUS, 2, "step ab", said.append, tmp_path):
                done.set()

        thread = threading.Thread(target=both)
        thread.start()
        while not said:
            time.sleep(0.01)
        # While it waits for cuda:1 it does not keep cuda:0 either.
        with leased(GPUS[:1], 1, "step a", said.append, tmp_path) as gpus:
            assert gpus == GPUS[:1]
        assert not done.is_set()
    thread.join(timeout=10)
    assert done.is_set()


def _hold_until_killed(folder: Path, ready) -> None:
    with leased(GPUS[:1], 1, "doomed step", print, folder):
        ready.set()
        time.sleep(600)


def test_a_killed_holder_frees_its_gpu(tmp_path):
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    holder = spawn.Process(target=_hold_until_killed, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(60)
    assert holder_of(tmp_path / "GPU-aaaa.lock").startswith("doomed step")
    holder.kill()
    holder.join()
    with leased(GPUS[:1], 1, "next step", print, tmp_path) as gpus:
        assert gpus == GPUS[:1]


def test_asking_for_more_gpus_than_there_are_is_an_error(tmp_path):
    with (
        pytest.raises(ValueError, match="cannot lease 3 of 2 GPUs"),
        leased(GPUS, 3, "greedy", print, tmp_path),
    ):
        pass
