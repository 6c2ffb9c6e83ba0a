# Two commands: `make demo` (set up + run the demo study) and `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
HPO := $(VENV)/bin/hpo
# pip on this machine lists local wheel indexes; their "Location ... is ignored" lines are noise
PIP_QUIET := grep -v "is ignored: it is neither a file nor a directory" || true

# the lock: every dependency (the dev extra included) pinned for Python 3.11 on Linux x86_64
LOCK := requirements.lock
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2

.PHONY: install lock demo test test-fast catalog clean

install: $(VENV)/.installed

# exactly the lock's versions (--no-deps on hpo itself), then `pip check`: nothing missing or clashing
$(VENV)/.installed: pyproject.toml constraints.txt $(LOCK)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt -r $(LOCK) 2>&1 | { $(PIP_QUIET); }
	$(VENV)/bin/pip install -q --no-deps -e . 2>&1 | { $(PIP_QUIET); }
	$(VENV)/bin/pip check
	$(PY) -c "import torch, torchvision, timm, ray, optuna, optuna_dashboard, sklearn"
	touch $@

# regenerate the lock from pyproject.toml (+ constraints.txt for torch), keeping the pins that still
# fit; `make lock UPGRADE="ray optuna"` moves those packages to their newest allowed versions
lock:
	python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), "the lock is for Python 3.11"'
	[ -x $(LOCK_VENV)/bin/pip-compile ] || { python3 -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS) 2>&1 | { $(PIP_QUIET); }; }
	$(LOCK_VENV)/bin/pip-compile --quiet --extra dev --constraint constraints.txt --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links $(foreach p,$(UPGRADE),--upgrade-package $(p)) \
	  --output-file $(LOCK) pyproject.toml 2>&1 | { $(PIP_QUIET); }

demo: install
	$(HPO) launch --study cb_focal_beta
	$(HPO) status --study cb_focal_beta
	$(HPO) export --study cb_focal_beta --out storage/cb_focal_beta_pareto.yaml
	$(HPO) report --study cb_focal_beta --out storage/report
	@echo
	@echo "Pareto-best configs: storage/cb_focal_beta_pareto.yaml (re-train: $(HPO) train --config storage/cb_focal_beta_pareto.yaml --seeds 3)"
	@echo "Report:              storage/report/index.html"
	@echo "Study database:      storage/hpo.db (watch: $(HPO) dashboard, then open http://127.0.0.1:8080)"

# the whole suite: what CI runs (.ci/run). The unit tests on both cores (pytest-xdist), then the
# end-to-end ones (Ray clusters, PostgreSQL, the browser) one at a time: each starts its own servers
test: install
	$(PY) -m pytest -q -n 2 -m "not e2e and not postgres and not browser"
	$(PY) -m pytest -q -m "e2e or postgres or browser"

# unit tests only (no `hpo launch`, no PostgreSQL, no browser): the inner loop, under 90 s on 2 cores
test-fast: install
	$(PY) -m pytest -q -n 2 -m "not e2e and not postgres and not browser"

# rewrite hpo/spec/catalog.json after adding or changing a registered name (a test checks it)
catalog: install
	$(PY) -m hpo.catalog_build

clean:
	rm -rf $(VENV) $(LOCK_VENV) storage/hpo.db* storage/ray storage/artifacts storage/report storage/*.yaml
