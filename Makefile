# Build a Transformer, piece by piece: every command a learner, an instructor or CI needs.
# `make lab` and `make test` each set up .venv first; re-running them is fast when nothing changed.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-requirements

.PHONY: setup browser lab test test-fast release instructor book benchmark clean

# The virtual environment is rebuilt only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
	  | { grep -v "^WARNING: Location 'file:" || true; }
	touch $(STAMP)

# The repository root goes on the venv's path (a .pth file), so `autograder` imports
# from any directory, including the Jupyter kernels that nbgrader starts.
setup: $(STAMP)
	@$(BIN)/python -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "transformer_course.pth").write_text("$(CURDIR)\n")'

# Learners: open the course in JupyterLab on localhost (LAB_ARGS: more options, e.g. --port=8890).
lab: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=course \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Headless Chromium and its driver, Debian's packages, for the site's browser test (tests/test_book.py).
# Installed once, when missing; CI runs as root.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

# Test processes at once (pytest-xdist): one per core. Each notebook, and each module whose tests
# share an expensive fixture, runs whole on one worker (tests/conftest.py); the rest go wherever a
# worker is free.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Threads for torch in each test process and in the kernels it starts: the cores shared among the
# jobs. torch's threads spin while they wait: two jobs of two threads on two cores ran chapter 6's
# probe training 12 times slower (134 s instead of 11 s).
THREADS = $(shell n=$$(( $$(nproc 2>/dev/null || echo 2) / $(JOBS) )); echo $$(( n > 0 ? n : 1 )))

# Everyone: the whole test suite in one run: the project's tests (the site's build and browser test
# among them) and nbval over the reference notebooks, the one place where the chapters' demos run.
test: setup browser
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup \
	  --nbval-lax --nbval-current-env tests solutions

# Contributors' inner loop: the loader, the registries, the protocol and views, and the CLI grading
# every reference notebook (full marks) and every untouched release (zero), without the slow tests.
test-fast: setup
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -q -n $(JOBS) -m "not slow" tests/test_loader.py tests/test_exercises.py \
	  tests/test_protocol.py tests/test_views.py tests/test_cli.py

# Instructors: regenerate course/ from solutions/ (nbgrader's generate_assignment).
release: setup
	$(BIN)/python -m autograder release

# Instructors: an nbgrader course directory in instructor/, one assignment per chapter.
instructor: setup
	$(BIN)/python -m autograder nbgrader-course instructor

# The course site, built from the notebooks without running them: the learner's edition in
# book/_build/html; `make book EDITION=instructor` builds the one with the solutions, in
# book/_build/instructor/html.
EDITION ?= learner
book: setup
	$(BIN)/python -m autograder.site --edition $(EDITION)

benchmark: setup
	$(BIN)/python -m autograder.benchmarks.grading

clean:
	rm -rf $(VENV) .pytest_cache book/_build
