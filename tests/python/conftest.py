import sys
from pathlib import Path

# Make the in-tree runtime (python/prs, python/azureml_user) importable by the tests.
PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

import pytest  # noqa: E402


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(script_text, **kwargs) -> a running WorkerProcess; stopped at teardown."""
    from worker_harness import WorkerProcess

    started = []

    def start(script, **kwargs):
        w = WorkerProcess(tmp_path, script, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()
