# Two commands do all the set-up on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab lab-copy lab-settings test lint venv sandbox bench clean notebooks docs

# The venv is refreshed whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,docs,spark]'
	touch $@

venv: $(STAMP)

# Jupyter refuses to run as root without --allow-root (CI containers and sandboxes run as root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

# jupyter-server-proxy (in the test extra) serves the sandbox's pages at {lab}/proxy/PORT/, so the
# login links work from a browser that cannot reach the kernel's 127.0.0.1 (a hub, an SSH tunnel).
# JupyterLab's settings overrides (lab/overrides.json: no "official Jupyter news?" prompt, no update
# check), where it reads them: the venv's app directory. The browser tests check they are there.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): lab/overrides.json $(STAMP)
	install -D -m 0644 lab/overrides.json $@

lab-settings: $(LAB_OVERRIDES)

# The learner's notebooks are theirs: JupyterLab opens a copy in $(LAB_COPY)/ (ignored by git), where
# each tutorial missing from it is copied from notebooks/ and none is ever overwritten, so autosave
# never rewrites the committed notebooks and `git pull` never conflicts. LINKING_TOOLKIT_KEEP_SANDBOX=1
# gives each notebook a sandbox that survives a kernel restart (linking_toolkit.sandbox.kept).
LAB_COPY ?= my-notebooks
lab-copy:
	mkdir -p $(LAB_COPY)
	for f in notebooks/*.ipynb; do test -e "$(LAB_COPY)/$${f##*/}" || cp "$$f" "$(LAB_COPY)/"; done

lab: $(STAMP) $(LAB_OVERRIDES) lab-copy
	LINKING_TOOLKIT_KEEP_SANDBOX=1 $(VENV)/bin/jupyter lab --notebook-dir=$(LAB_COPY) \
		--ServerApp.ip=127.0.0.1 --no-browser $(ALLOW_ROOT)

# Re-run the tutorials in place after changing them: outputs are committed (the sandbox's ports
# replaced by PORT, as sanitize.cfg compares them), widget state is not.
notebooks: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --execute --to notebook --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.store_widget_state=False \
		$(or $(NOTEBOOKS),notebooks/*.ipynb)
	$(PY) tools/scrub_ports.py $(or $(NOTEBOOKS),notebooks/*.ipynb)

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

test: $(STAMP) $(LAB_OVERRIDES) lint $(SPA)/node_modules/.package-lock.json
	$(PY) -m pytest $(PYTEST_ARGS)

# The documentation site, warnings as errors (a broken reference or a page in no toctree fails it);
# the notebooks are rendered from their committed outputs, never run. Open docs/_build/html/index.html.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

sandbox: $(STAMP)
	$(PY) -m linking_toolkit.sandbox --seed 1

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts $(SPA)/node_modules docs/_build docs/reference/api
