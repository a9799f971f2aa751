"""The set-up: pip and conda list the same packages, CI runs the README's test command."""

import re
import subprocess

from conftest import PROJECT

PIP_TO_CONDA = {"torch": "pytorch"}


def requirement_lines(text: str) -> set[str]:
    return {line.split("#")[0].strip().replace(" ", "") for line in text.splitlines()
            if line.split("#")[0].strip()}


def test_environment_yml_lists_the_same_packages_as_requirements_txt():
    pip = requirement_lines((PROJECT / "requirements.txt").read_text())
    yml = (PROJECT / "environment.yml").read_text()
    dependencies = yml.split("dependencies:")[1]
    conda = {m.group(1).replace(" ", "") for m in re.finditer(r"^\s+-\s+(\S.*)$", dependencies, re.M)}
    conda -= {"python=3.11", "pip", "pip:"}  # the entries under "- pip:" use pip's names, like requirements.txt
    renamed = set()
    for spec in pip:
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0)
        renamed.add(PIP_TO_CONDA.get(name, name) + spec[len(name):])
    assert renamed == conda


def test_torch_is_pinned_so_that_no_cuda_build_is_downloaded():
    assert "torch==2.13.0" in requirement_lines((PROJECT / "requirements.txt").read_text())


def readme_commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT / ".ci" / "run").read_text()
    assert "make test" in readme_commands()
    assert re.search(r"^make test$", ci, re.M)


def test_every_make_target_in_the_readme_exists():
    targets = {c.split()[1] for c in readme_commands() if c.startswith("make ")}
    assert {"lab", "test", "release"} <= targets
    for target in targets:
        done = subprocess.run(["make", "-n", target], cwd=PROJECT, capture_output=True, text=True)
        assert done.returncode == 0, f"make {target}: {done.stderr}"


def test_make_lab_serves_the_course_on_localhost():
    import json
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "course-test-token"
    lab = subprocess.Popen(["make", "lab", f"LAB_ARGS=--no-browser --port={port} --IdentityProvider.token={token}"],
                           cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, listing = time.monotonic() + 90, None
        while listing is None and time.monotonic() < deadline and lab.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
                    listing = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer on localhost"
        names = {item["name"] for item in listing["content"]}
        assert "01_self_attention.ipynb" in names and "notebook_loader.py" in names
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
