#!/usr/bin/env bash
# Wheels for the GPU machine's image, which has torch, transformers, tokenizers and pyarrow but
# not Dagster or weaviate-client: what benchmarks/full_run.py needs on top. grpcio and protobuf
# come too (the image has them, in versions not known here, and grpcio-health-checking refuses a
# grpcio older than its own). The wheels (25 MB) and the fp16 model directory (44 MiB) together
# pass the 64 MiB a device call carries, and a later call does not find what an earlier one
# carried; so the wheels are unpacked and travel as one xz archive (19 MB) beside the model.
# Versions are this virtual environment's, so they are known to work together.
# Usage (repository root): benchmarks/gpu_wheels.sh   -> .whl/site.tar.xz (git-ignored)
set -euo pipefail
packages=(alembic annotated-types antlr4-python3-runtime authlib backoff cffi coloredlogs
  cryptography dagster dagster-pipes dagster-shared docstring-parser greenlet grpcio
  grpcio-health-checking humanfriendly joserfc mako pathlib-abc platformdirs protobuf pycparser
  pydantic pydantic-core python-dotenv pytz sqlalchemy structlog tomli tomlkit toposort
  truststore typing-inspection tzdata universal-pathlib validators watchdog weaviate-client)
pins=()
for name in "${packages[@]}"; do
  pin=$(.venv/bin/pip freeze 2>/dev/null | grep -i -E "^${name//-/[-_]}==" || true)
  [ -n "$pin" ] || { echo "not in .venv: $name" >&2; exit 1; }
  pins+=("$pin")
done
rm -rf .whl && mkdir -p .whl/wheels .whl/site
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  --platform manylinux_2_34_x86_64 -d .whl/wheels "${pins[@]}"
# py-spy, a sampling profiler for the Python side of a run (its binary lands under
# py_spy-*.data/scripts/ once unpacked): not in .venv, so pinned here.
python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_5_x86_64 \
  -d .whl/wheels py-spy==0.4.3
# A wheel is a zip of site-packages: unpacking it is installing it (no entry points are needed).
for wheel in .whl/wheels/*.whl; do unzip -q -o "$wheel" -d .whl/site; done
tar cf - -C .whl/site . | xz -9 -T0 >.whl/site.tar.xz
rm -rf .whl/wheels .whl/site
du -sh .whl/site.tar.xz
