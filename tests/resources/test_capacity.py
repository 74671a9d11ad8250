"""How much of a machine a bulk load takes: runs at once and chunk processes per run."""

from resources.capacity import Machine, chunk_processes, concurrent_runs, server_memory_limit

GIB = 2**30


def test_a_16_core_gpu_machine_runs_four_runs_of_four_chunk_processes():
    machine = Machine(cpus=16, gpus=1, memory_bytes=125 * GIB)
    assert concurrent_runs(machine) == 4
    assert chunk_processes(machine) == 4


def test_every_gpu_gets_a_run_even_with_few_cores():
    machine = Machine(cpus=16, gpus=8, memory_bytes=560 * GIB)
    assert concurrent_runs(machine) == 8
    assert chunk_processes(machine) == 2


def test_memory_caps_the_runs_beside_the_server():
    # 24 GiB: 16 for the server leave room for two runs of 4 GiB.
    assert concurrent_runs(Machine(cpus=64, gpus=0, memory_bytes=24 * GIB)) == 2
    assert concurrent_runs(Machine(cpus=64, gpus=0, memory_bytes=8 * GIB)) == 1


def test_a_small_machine_runs_one_run_with_a_quarter_of_its_cores():
    machine = Machine(cpus=2, gpus=0, memory_bytes=24 * GIB)
    assert concurrent_runs(machine) == 1
    assert chunk_processes(machine) == 1
    assert chunk_processes(Machine(cpus=8, gpus=0, memory_bytes=64 * GIB)) == 2


def test_the_managed_server_may_use_the_memory_the_runs_leave_less_a_tenth():
    # 125 GiB, four runs of 4 GiB: 0.9 x 109 GiB.
    gpu_machine = Machine(cpus=16, gpus=1, memory_bytes=125 * GIB)
    assert server_memory_limit(gpu_machine) == int(0.9 * 109 * GIB)
    # A machine the runs would fill still leaves the server half its reserve.
    assert server_memory_limit(Machine(cpus=2, gpus=0, memory_bytes=8 * GIB)) == int(0.9 * 8 * GIB)
