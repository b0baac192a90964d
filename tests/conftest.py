import os, pytest, torch

# Under pytest-xdist (`make test` runs two workers on two cores) each worker, and every process it starts, computes on one
# thread: two tests side by side, not four threads fighting over two cores.
XDIST = "PYTEST_XDIST_WORKER" in os.environ
if XDIST: os.environ.setdefault("OMP_NUM_THREADS", "1")
THREADS = 1 if XDIST else max(1, min(2, os.cpu_count() or 1))
torch.set_num_threads(THREADS)

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds on 2 CPU cores")
    config.addinivalue_line("markers", "gpu: needs CUDA")

def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs CUDA")
    for it in items:
        if "gpu" in it.keywords: it.add_marker(skip)

def pytest_unconfigure(config):
    "Under tools/coverage.sh: an xdist worker saves what it measured before it exits (execnet ends workers without atexit)."
    if not (XDIST and os.environ.get("COVERAGE_PROCESS_START")): return
    import coverage
    cov = coverage.Coverage.current()
    if cov is not None: cov.stop(); cov.save()
