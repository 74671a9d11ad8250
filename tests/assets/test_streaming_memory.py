"""Host memory of the corpus_shard and chunks steps does not grow with the corpus.

Each corpus size runs in its own child process, so the peak resident memory it reports
(`ru_maxrss`) belongs to that run alone: registration of every shard, then both stages over the
same two shards (the same number of Dagster runs, whose bookkeeping would otherwise show as
growth). Registration or a step that read the whole corpus to process one shard would grow with
the 4x corpus; a streaming one stays flat.
"""

import json
import os
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from dagster import DagsterInstance, materialize
    from assets.chunks import chunks
    from assets.corpus import corpus_shard
    from orchestration.jobs import register_shards
    from assets.partitions import shard_partitions
    from resources.corpus.resource import CorpusResource
    from resources.corpus.sample import SampleSpec, write_sample_corpus
    from resources.embedding import EmbeddingResource

    root, docs = sys.argv[1], int(sys.argv[2])
    spec = SampleSpec(docs=docs, seed=6, median_tokens=6000, max_tokens=30_000,
                      docs_per_file=docs)
    stats = write_sample_corpus(f"{root}/corpus", spec)
    corpus = CorpusResource(corpus_path=f"{root}/corpus", shard_size=40, data_dir=f"{root}/data")
    resources = {"corpus": corpus, "embedder": EmbeddingResource(device="cpu",
                                                                 data_dir=f"{root}/data")}
    instance = DagsterInstance.ephemeral()
    assert register_shards.execute_in_process(instance=instance,
                                              resources={"corpus": corpus}).success
    keys = instance.get_dynamic_partitions(shard_partitions.name)
    for key in sorted(keys)[:2]:
        assert materialize([corpus_shard, chunks], partition_key=key, instance=instance,
                           resources=resources).success
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"shards": len(keys), "tokens": stats["tokens"], "peak_kib": peak_kib}))
    """
)


def _run(root, docs: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(docs)],
        capture_output=True, text=True, timeout=120, env={"HF_HUB_OFFLINE": "1", **os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_peak_memory_stays_flat_over_a_corpus_four_times_larger(tmp_path):
    small = _run(tmp_path / "small", 80)
    large = _run(tmp_path / "large", 320)
    assert (small["shards"], large["shards"]) == (2, 8)
    growth_mib = (large["peak_kib"] - small["peak_kib"]) / 1024
    corpus_mib = (large["tokens"] - small["tokens"]) * 6 / 2**20  # about 6 bytes per token
    print(f"peak {small['peak_kib'] / 1024:.0f} -> {large['peak_kib'] / 1024:.0f} MiB, "
          f"growth {growth_mib:.1f} MiB for {corpus_mib:.0f} MiB more text")  # fmt: skip
    # Holding the extra text alone (let alone its tokens) would cost more than this.
    assert growth_mib < max(4.0, corpus_mib / 3)
