import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from tiny_run import tiny_config

from d2f.train import loop

TIME_LIMIT = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker(rank: int, world_size: int, port: int, out: str, results: str) -> None:
    """One torchrun-like process: the environment torchrun sets, then the ordinary train() call."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    built = []
    build_model = loop.build_model
    loop.build_model = lambda config: built.append(build_model(config)) or built[-1]
    loop.train(tiny_config("run.steps=3", "run.val_every=3", "run.ema_decay=null"), out, progress=False)
    torch.save(built[0].state_dict(), f"{results}/rank{rank}.pt")


def test_two_gloo_processes_stay_in_sync(tmp_path):
    out = tmp_path / "run"
    context = mp.spawn(worker, args=(2, free_port(), str(out), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + TIME_LIMIT
    while not context.join(timeout=2):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"two-process training did not finish within {TIME_LIMIT} s")
    first, second = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    exported = load_file(out / "model" / "model.safetensors")
    parameters = {name for name, _ in loop.build_model(tiny_config().model).named_parameters()}
    for key, value in first.items():
        assert torch.equal(exported[key], value), key  # rank 0 exports
        # Batch-norm statistics are rank 0's at every forward pass but then see each rank's own batch.
        if key in parameters:
            assert torch.equal(value, second[key]), key
    # Each process saw other images, so equal weights mean averaged gradients, not idle training.
    torch.manual_seed(0)
    initial = loop.build_model(tiny_config().model).state_dict()
    assert any(not torch.equal(initial[key], first[key]) for key in initial if key.startswith("defocus_net"))
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["step", "0", "1", "2", "3"]
