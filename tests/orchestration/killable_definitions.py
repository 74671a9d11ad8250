"""The project's definitions, for runs launched through the run launcher in the liveness test.

When STOP_ONCE_INSIDE_EMBEDDING names a file that does not exist yet, the run worker that loads
these definitions stops as its first shard's embedding starts and writes its pid and its
parent's (the code server's) there, for the test to kill both; the run launched after it finds
the file and runs undisturbed.
"""

import os
import time
from pathlib import Path

from orchestration.definitions import build_definitions
from resources.embedding.engine import EmbeddingEngine

defs = build_definitions()
_marker = os.environ.get("STOP_ONCE_INSIDE_EMBEDDING")

if _marker and not Path(_marker).exists():

    def _stop(self, *args, **kwargs):
        Path(_marker).write_text(f"{os.getpid()} {os.getppid()}")
        time.sleep(600)

    EmbeddingEngine.embed_tokenized = _stop
