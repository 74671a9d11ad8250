"""What the project reads of a process from /proc."""

import subprocess
import sys

from resources.processes import resident_bytes


def test_resident_memory_grows_with_what_a_process_holds_and_is_zero_once_it_is_gone():
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(200 * 2**20); b[::4096] = b'x' * "
         "len(b[::4096]); print(1, flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "1"  # its 200 MiB are touched
        assert resident_bytes(holder.pid) > 200 * 2**20
    finally:
        holder.communicate("")
    assert resident_bytes(holder.pid) == 0
