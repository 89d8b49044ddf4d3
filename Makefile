# The commands the README tells people to type. Every target sets itself up first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
SCALE  ?= cpu
# TORCH=cpu: install torch's CPU build (≈ 200 MB) instead of the default CUDA wheels (≈ 5 GB)
TORCH  ?=
P      ?= template

# Developers and CI: use the shared read-only data root beside the checkout when it exists
# (an explicit SHORTCUT_NB_DATA always wins; without either, torchvision downloads to ~/.cache).
SHARED_DATA := $(abspath ../shared/data)
ifeq ($(origin SHORTCUT_NB_DATA), undefined)
  ifneq ($(wildcard $(SHARED_DATA)/MD5SUMS),)
    export SHORTCUT_NB_DATA := $(SHARED_DATA)
  endif
endif

.PHONY: setup test test-paper-dry test-determinism reproduce paper bench readme summary sync check-sync lab docs
setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(filter cpu,$(TORCH)),$(PY) -m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu,)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: setup            ## notebook cells as tests, then pytest (papermill smoke runs, bad inputs, CLI)
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --do_print   # 2 workers × 1 thread: no oversubscription
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -rs -n 2 --dist loadgroup --durations=15 tests   # 2 workers (pytest-xdist), a paper's smoke-run readers on one; -rs: why a test was skipped

test-paper-dry: setup  ## every paper notebook at `paper` scale with every loop capped (SHORTCUT_NB_DRY_RUN): the GPU path, checked on a CPU
	SHORTCUT_NB_TEST_PAPER_DRY=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -rs -n 2 tests/test_paper_dry_run.py

test-determinism: setup  ## same seed, same numbers in two processes: every architecture, maker and paper at smoke (≈ 10 min on 2 cores)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests/test_determinism.py

reproduce: setup       ## every paper at SCALE (default cpu) → outputs/<paper>/<scale>/, then the results page
	$(BIN)/shortcut-nb reproduce --scale $(SCALE)
	$(MAKE) summary

summary: setup         ## outputs/SUMMARY.md and the README's results table, from every outputs/<paper>/<run>/
	$(BIN)/shortcut-nb summary
	$(MAKE) readme

paper: setup           ## one paper: make paper P=template SCALE=cpu
	$(BIN)/shortcut-nb paper $(P) --scale $(SCALE)

bench: setup           ## every benchmark in bench/ (each prints a ratio against its baseline; see bench/RESULTS.md)
	for b in bench/[a-z]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

readme: setup          ## README.md is generated from nbs/index.ipynb
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README --log-level WARN

sync: setup            ## export the package from the notebooks and clean the notebooks
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_clean --fname papers

check-sync: sync readme  ## fail if exporting/cleaning/README generation changed any tracked file
	@git diff --stat --exit-code || (echo "nbdev_export / nbdev_clean / README changed files: run 'make sync readme' and commit" && exit 1)
	@test -z "$$(git status --porcelain --untracked-files=normal -- shortcut_nb nbs papers README.md)" || (git status --porcelain; echo "untracked generated files" && exit 1)

nb-outputs: setup      ## library notebooks as documentation: add show_doc cells, execute each in place keeping its outputs (≈ 15 min)
	OMP_NUM_THREADS=1 $(PY) -m shortcut_nb.docs --execute $(sort $(wildcard nbs/*.ipynb))
	$(BIN)/nbdev_clean

docs: setup            ## static HTML site of every notebook (library + executed papers) → _docs/index.html
	$(PY) -m shortcut_nb.docs --out _docs --scale $(SCALE)

lab: setup             ## explore interactively (as root too: --allow-root is added for uid 0)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,)
