# Two commands: `make demo` (set up + run the demo study) and `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
HPO := $(VENV)/bin/hpo
# pip on this machine lists local wheel indexes; their "Location ... is ignored" lines are noise
PIP_QUIET := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: install demo test test-fast catalog clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]' 2>&1 | { $(PIP_QUIET); }
	$(PY) -c "import torch, torchvision, timm, ray, optuna, optuna_dashboard, sklearn"
	touch $@

demo: install
	$(HPO) launch --study cb_focal_beta
	$(HPO) status --study cb_focal_beta
	$(HPO) export --study cb_focal_beta --out storage/cb_focal_beta_pareto.yaml
	$(HPO) report --study cb_focal_beta --out storage/report
	@echo
	@echo "Pareto-best configs: storage/cb_focal_beta_pareto.yaml (re-train: $(HPO) train --config storage/cb_focal_beta_pareto.yaml --seeds 3)"
	@echo "Report:              storage/report/index.html"
	@echo "Study database:      storage/hpo.db (watch: $(HPO) dashboard, then open http://127.0.0.1:8080)"

# the whole suite: what CI runs (.ci/run)
test: install
	$(PY) -m pytest -q

# unit tests only (no `hpo launch`, no PostgreSQL, no browser): the inner loop, under 90 s on 2 cores
test-fast: install
	$(PY) -m pytest -q -m "not e2e and not postgres and not browser"

# rewrite hpo/spec/catalog.json after adding or changing a registered name (a test checks it)
catalog: install
	$(PY) -m hpo.catalog_build

clean:
	rm -rf $(VENV) storage/hpo.db* storage/ray storage/artifacts storage/report storage/*.yaml
