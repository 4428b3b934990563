# Two commands on a fresh machine: `make run` (set up + open the workbench on the bundled samples) and
# `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= model,cluster,server,workbench,desktop,dev

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# `make run` opens the desktop workbench, offline, on the sample project (imported and segmented on the
# first start). Where there is no display (Linux without DISPLAY or WAYLAND_DISPLAY: a server, CI, ssh) it
# says so and segments the samples headless instead, so it still does the main job anywhere.
HAS_DISPLAY := $(if $(filter-out Linux,$(shell uname -s)),yes,$(DISPLAY)$(WAYLAND_DISPLAY))

run: $(STAMP)
ifneq ($(HAS_DISPLAY),)
	$(BIN)/spheroseg workbench --sample-project
else
	@echo "No display (DISPLAY and WAYLAND_DISPLAY are unset): segmenting resources/samples headless into results/ instead of opening the workbench."
	$(BIN)/spheroseg segment resources/samples --out results/
endif

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy cluster server workbench

# The windows' tests run in a process of their own: whatever Qt leaves behind ends with it, and cannot be
# collected in the middle of another test. The desktop bundle (packaging/desktop) is built meanwhile, at the
# lowest priority so the timed parts of the other tests keep their processor, and tested with the windows.
TEST_BUNDLE := build/test-bundle

test: $(STAMP)
	@mkdir -p build; \
	nice -n 19 $(BIN)/python packaging/desktop/build.py --flavour lean --dist $(TEST_BUNDLE) \
		> build/test-bundle.log 2>&1 & building=$$!; \
	trap 'kill $$building 2>/dev/null' EXIT; \
	$(MAKE) --no-print-directory lint \
	&& $(BIN)/python -m pytest -p no:napari --ignore=tests/workbench/qt \
		--ignore=tests/packaging/test_desktop_bundle.py \
	&& { wait $$building || { echo "The desktop bundle did not build:"; tail -n 40 build/test-bundle.log; false; }; } \
	&& SPHEROSEG_TEST_BUNDLE=$(CURDIR)/$(TEST_BUNDLE)/SpheroSeg \
		$(BIN)/python -m pytest tests/workbench/qt tests/packaging/test_desktop_bundle.py

# The benchmarks also need what they measure against: Cellpose 3's network (benchmarks/segment_model.py),
# without weights. Not in the dev extra and with --no-deps: cellpose<4 pins numpy<2.1 and pulls in opencv,
# numba and more, none of which its network (cellpose.resnet_torch, torch only) needs.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps 'cellpose>=3,<4'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) results build .pytest_cache .mypy_cache .ruff_cache
