"""`weaviate-indexer ARGS...` in a process that SIGKILLs itself at a pipeline point.

python -m tests.orchestration.killed_command KILL_JSON ARGS...
"""

import json
import sys

from orchestration.cli import main
from tests.assets.backfill_driver import install_kill

if __name__ == "__main__":
    install_kill(json.loads(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
