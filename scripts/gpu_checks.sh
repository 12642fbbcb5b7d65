#!/usr/bin/env bash
# Every check that needs a CUDA GPU: the tests that run only there, then the GPU benchmarks whose
# figures docs/performance.md records. From the repository root, with d2f importable
# (installed, or PYTHONPATH=src); about two minutes on an H100.
#   scripts/gpu_checks.sh
set -u
status=0
python -m pytest -q -k "cuda or tf32" tests || status=1
python benchmarks/render.py --device cuda --graph --repeats 20 || status=1
python benchmarks/default_model.py --runs 5 || status=1
python benchmarks/pipeline.py --skip-12mp --runs 3 || status=1
python benchmarks/model_speed.py --model d2f-lite-2 --device cuda --runs 5 || status=1
exit $status
