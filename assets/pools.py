"""The concurrency pool that GPU steps wait in: one slot per GPU (`orchestration/instance.py`).

How a step waits for it is Dagster's, with two repairs applied with the definitions
(`orchestration/workarounds.py`): the wait sleeps between checks, and says who holds the slots.
"""

GPU_POOL = "gpu"
