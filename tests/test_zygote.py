"""Contestants forked from the judge's zygote: adopted by the judge, blind to what the judge got
after the zygote was made (the key, the references), quick to start again, and started as a new
Python when the submission has killed the zygote.

The judge's steps run in a child Python (``SCENARIO``), since a zygote's maker becomes a child
subreaper, which this test process should not. The parent's zygote of judges (a ForkServer per
grading thread) is checked through ``grade_submission``."""

import json
import subprocess
import sys

from conftest import PROJECT, SOLUTIONS, code_cell, write_notebook

LEARNER = '''
import os
import sys


def sees(module):
    return module in sys.modules


def parent():
    return os.getppid()


def leave():
    os._exit(3)
'''

SCENARIO = '''
import json, os, sys, time, types
from pathlib import Path
from autograder.sandbox.judge import Contestant, RemoteNamespace, preload

preload()
notebook, stderr = Path(sys.argv[1]), Path(sys.argv[2])
sys.modules["made_before_the_zygote"] = types.ModuleType("made_before_the_zygote")
contestant = Contestant(notebook, 60.0, 4 << 30, stderr, {})
contestant.start_zygote()
sys.modules["secret_made_after_the_zygote"] = types.ModuleType("secret_made_after_the_zygote")  # the key, say


def timed_start():
    started = time.perf_counter()
    contestant.start()
    contestant.wait_loaded()
    return time.perf_counter() - started


report = {"first": timed_start()}
names = RemoteNamespace(contestant)
report["first_is_a_fork"] = type(contestant.process).__name__ == "Child"
report["sees_before"] = names["sees"]("made_before_the_zygote")
report["sees_secret"] = names["sees"]("secret_made_after_the_zygote")
report["adopted"] = names["parent"]() == os.getpid()
try:
    names["leave"]()
except Exception as error:
    report["ended"] = str(error)
report["restart"] = timed_start()
report["restart_is_a_fork"] = type(contestant.process).__name__ == "Child"
report["sees_secret_after_restart"] = RemoteNamespace(contestant)["sees"]("secret_made_after_the_zygote")
contestant.kill()
os.kill(contestant.zygote.pid, 9)  # as a submission of the instructor's user could
report["spawned"] = timed_start()
report["spawned_is_a_new_python"] = type(contestant.process).__name__ == "Popen" and contestant.zygote is None
report["spawned_sees_secret"] = RemoteNamespace(contestant)["sees"]("secret_made_after_the_zygote")
contestant.kill()
print(json.dumps(report))
'''


def test_a_contestant_forked_from_the_zygote_is_adopted_and_sees_nothing_made_after_it(tmp_path):
    notebook = write_notebook(tmp_path / "learner.ipynb", [code_cell(LEARNER)])
    done = subprocess.run([sys.executable, "-c", SCENARIO, str(notebook), str(tmp_path / "stderr.txt")],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["first_is_a_fork"] and report["restart_is_a_fork"]
    assert report["sees_before"] is True  # the check can see: it is a fork of the judge's state
    assert report["sees_secret"] is False and report["sees_secret_after_restart"] is False
    assert report["adopted"] is True  # the judge waits for it, and it dies with the judge
    assert "exit code 3" in report["ended"]
    assert report["spawned_is_a_new_python"] and report["spawned_sees_secret"] is False  # once the zygote is gone
    print(f"\ncontestant start, notebook loaded: forked {report['first']:.3f} s, restarted "
          f"{report['restart']:.3f} s, a new Python {report['spawned']:.3f} s")


def test_a_thread_forks_its_judges_from_one_server_and_replaces_a_dead_one():
    from autograder.sandbox import grade_submission, parent
    notebook = SOLUTIONS / "01_self_attention.ipynb"
    results = [grade_submission(notebook)]
    server = parent._zygote()
    results.append(grade_submission(notebook))
    assert parent._zygote() is server
    server.process.kill()  # as a submission of the instructor's user could
    server.process.wait()
    results.append(grade_submission(notebook))
    assert parent._zygote() is not server
    assert [r.total for r in results] == [r.max_total for r in results] and all(r.status == "ok" for r in results)
