# Two commands do all the set-up on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test lint venv sandbox bench clean notebooks

# The venv is refreshed whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,spark]'
	touch $@

venv: $(STAMP)

# Jupyter refuses to run as root without --allow-root (CI containers and sandboxes run as root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

# jupyter-server-proxy (in the test extra) serves the sandbox's pages at {lab}/proxy/PORT/, so the
# login links work from a browser that cannot reach the kernel's 127.0.0.1 (a hub, an SSH tunnel).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --no-browser $(ALLOW_ROOT)

# Re-run the tutorials in place after changing them: outputs are committed, widget state is not.
notebooks: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --execute --to notebook --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.store_widget_state=False \
		$(or $(NOTEBOOKS),notebooks/*.ipynb)

# ruff, then the import contracts of pyproject.toml (layers, the sandbox's independence, no circles).
lint: $(STAMP)
	$(VENV)/bin/ruff check linking_toolkit tests bench
	$(VENV)/bin/lint-imports

# The browser-app example's SDK (@auth0/auth0-spa-js, pinned in its package-lock.json), which
# tests/test_browser_spa.py loads in Chromium; reinstalled whenever the lock file changes.
SPA := examples/spa-linking
$(SPA)/node_modules/.package-lock.json: $(SPA)/package-lock.json
	npm ci --prefix $(SPA) --no-audit --no-fund
	touch $@

test: $(STAMP) lint $(SPA)/node_modules/.package-lock.json
	$(PY) -m pytest $(PYTEST_ARGS)

sandbox: $(STAMP)
	$(PY) -m linking_toolkit.sandbox --seed 1

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts $(SPA)/node_modules
