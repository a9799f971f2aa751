"""`make test` keeps each module of conftest.ONE_WORKER_MODULES on one pytest-xdist worker.

The grouping failed silently once (xdist_group marks under pytest 9.2): the suite stayed green
while a second worker waited 85 s on a fixture's lock. This runs the scheduler on a small suite.
"""

import os
import subprocess
import sys

from conftest import ONE_WORKER_MODULES, PROJECT

SHARED, FREE = ONE_WORKER_MODULES[0], "test_free.py"
RECORDS_WORKER = '''
import os
import time

import pytest


@pytest.mark.parametrize("case", range(8))
def test_case(case):
    with open("workers.txt", "a") as out:
        out.write(f"{__name__} {os.environ['PYTEST_XDIST_WORKER']}\\n")
    if __name__ == "test_free":  # wait (a while) for a test on the other worker: the outer test judges
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({l.split()[1] for l in open("workers.txt") if "free" in l}) < 2:
            time.sleep(0.05)
'''


def test_a_shared_fixture_module_runs_on_one_worker_and_the_others_spread(tmp_path):
    (tmp_path / "conftest.py").write_text((PROJECT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    for module in (SHARED, FREE):
        (tmp_path / module).write_text(RECORDS_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                          SHARED, FREE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    workers = {}
    for line in (tmp_path / "workers.txt").read_text().splitlines():
        module, worker = line.split()
        workers.setdefault(module, set()).add(worker)
    assert len(workers[SHARED.removesuffix(".py")]) == 1, workers
    assert len(workers[FREE.removesuffix(".py")]) == 2, "the other tests must still spread over both workers"
