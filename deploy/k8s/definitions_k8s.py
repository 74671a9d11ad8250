"""The project's Definitions with every step run as its own Kubernetes Job.

Load this file instead of orchestration/definitions.py in a Kubernetes code location
(`dagster api grpc --python-file deploy/k8s/definitions_k8s.py`). The executor's settings are in
executor.yaml beside this file; the embeddings step asks for one GPU there.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster_k8s import k8s_job_executor

from orchestration.definitions import build_definitions

HERE = Path(__file__).resolve().parent
EXECUTOR_CONFIG = yaml.safe_load((HERE / "executor.yaml").read_text())

defs = build_definitions(executor=k8s_job_executor.configured(EXECUTOR_CONFIG))
