import os, pytest, torch
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds on 2 CPU cores")
    config.addinivalue_line("markers", "gpu: needs CUDA")

def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs CUDA")
    for it in items:
        if "gpu" in it.keywords: it.add_marker(skip)
