# Two commands on a fresh machine:  `make run`  and  `make test`  (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test install servers bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The demo utility's open month: read but not billed by the seed (billing_core/demo/seed.py CYCLE_PERIOD).
DEMO_PERIOD ?= 2026-10

## Install, migrate, seed the demo utility if the database is empty, bill its open month, start the service.
## Re-running is safe: the seed skips a populated database and the cycle skips an issued period.
run: install
	$(BIN)/powerdesk db upgrade
	$(BIN)/powerdesk demo seed --if-empty
	$(BIN)/powerdesk billing run-cycle --period $(DEMO_PERIOD)
	$(BIN)/powerdesk serve

## Install test extras and the servers the tests start (PostgreSQL, Redis, Chromium), then run pytest.
test: install servers
	$(BIN)/python -m pytest

servers:
	bash tests/servers/install.sh

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var
