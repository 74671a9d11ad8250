"""`weaviate-indexer ARGS...` killed (SIGKILL, its whole process group) at a pipeline point.

python -m tests.orchestration.killed_command KILL_JSON ARGS...

The pipeline runs in the command's worker processes, so the kill point is installed there; it
kills the command's process group (the worker's parent and every process in its group, as a
killed terminal session or pod would) and the worker itself.
"""

import functools
import json
import os
import signal
import sys

from orchestration.cli import main
from orchestration.run_pool import RunPool


def _in_worker(kill: dict) -> None:
    import tests.assets.backfill_driver as driver

    command_group = os.getpgid(os.getppid())

    def die() -> None:
        os.killpg(command_group, signal.SIGKILL)
        os.killpg(0, signal.SIGKILL)  # the worker leads its own group, its chunk processes in it

    driver._die = die
    driver.install_kill(kill)


if __name__ == "__main__":
    RunPool.worker_initializer = functools.partial(_in_worker, json.loads(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
