import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests use tiny images, where a second intra-op thread only adds overhead (and on a busy
    2-core machine torch's threads spin against each other, making steps 10-40x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
