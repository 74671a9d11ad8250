"""deploy/k8s validates against Dagster's and dagster-k8s's own schemas, without a cluster."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
dagster_k8s = pytest.importorskip(
    "dagster_k8s", reason="dagster-k8s is not installed (pip install -e '.[k8s]')"
)


def test_instance_yaml_matches_the_instance_schema(tmp_path):
    shutil.copy(K8S / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["enabled"]
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_retries"]["enabled"]
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["concurrency"]["pools"]["granularity"] == "op"
    launcher = config["run_launcher"]
    assert launcher["class"] == "K8sRunLauncher"
    result = validate_config(dagster_k8s.K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors


def _step_pod(config: dict, step: str):
    """The pod spec the k8s_job_executor builds for `step` from executor.yaml."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    own = UserDefinedDagsterK8sConfig.from_dict(config["per_step_k8s_config"][step])
    context = K8sContainerContext(
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(config["step_k8s_config"]),
        volumes=config["volumes"],
        volume_mounts=config["volume_mounts"],
        namespace=config["job_namespace"],
    ).merge(K8sContainerContext(run_k8s_config=own))
    # Only the fields get_k8s_job_config reads from the instance's run launcher.
    launcher = SimpleNamespace(
        job_image=None,
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql-secret",
    )
    job_config = context.get_k8s_job_config("weaviate-indexer:test", launcher)
    job = construct_dagster_k8s_job(
        job_config,
        ["dagster", "api", "execute_step"],
        "dagster-step-test",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.spec.template.spec


def test_executor_config_and_gpu_step_job():
    config = yaml.safe_load((K8S / "executor.yaml").read_text())
    result = validate_config(dagster_k8s.k8s_job_executor.config_schema.config_type, config)
    assert result.success, result.errors

    pod = _step_pod(config, "embeddings")
    assert pod.containers[0].resources.limits["nvidia.com/gpu"] in (1, "1")
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert pod.tolerations[0].key == "nvidia.com/gpu"
    assert pod.volumes[0].persistent_volume_claim.claim_name == "indexer-data"


def test_the_chunks_step_runs_one_worker_per_cpu_it_asks_for():
    pod = _step_pod(yaml.safe_load((K8S / "executor.yaml").read_text()), "chunks")
    [container] = pod.containers
    env = {var.name: var.value for var in container.env}
    assert env["CHUNK_PROCESSES"] == str(container.resources.requests["cpu"]) == "4"
    assert "nvidia.com/gpu" not in (container.resources.limits or {})


def test_definitions_use_the_k8s_executor_and_the_gpu_tag_parses():
    from dagster_k8s.job import get_user_defined_k8s_config

    spec = importlib.util.spec_from_file_location("definitions_k8s", K8S / "definitions_k8s.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    job = module.defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s"
    # The embeddings step's pod, as the executor's per-step settings give it: one GPU.
    step = module.EXECUTOR_CONFIG["per_step_k8s_config"]["embeddings"]
    parsed = get_user_defined_k8s_config({"dagster-k8s/config": json.dumps(step)})
    assert parsed.container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert step["pod_spec_config"]


def test_helm_values_match_the_instance_yaml():
    values = yaml.safe_load((K8S / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"]
    assert values["dagsterDaemon"]["runRetries"]["enabled"]
