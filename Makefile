# Every target makes .venv and installs what it needs, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-postgres bench lint venv clean

# One stamp per set of extras (pyproject.toml): each target installs what it runs. The demo needs the cloud, the
# gateway and the simulator; tests, benchmarks, lint and venv everything.
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$*]'
	touch $@

venv: $(STAMP)

demo: $(VENV)/.installed-demo
	$(BIN)/iotsphere demo

test: $(STAMP)
	# Debian's mosquitto, chromium, prometheus and alertmanager, and a broker on 127.0.0.1:1883: installed and started as root, else the command to run
	bash tests/ensure_system.sh
	# pytest exits 5 when a selection collects no test: that is not a failure.
	$(BIN)/pytest -q $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The tests that touch storage again on PostgreSQL (127.0.0.1:5432, trust auth, database `test`), each run in a schema
# of its own (tests/postgres_run.py); tests marked sqlite_only are deselected.
POSTGRES_TESTS ?= tests/alerts tests/api tests/registry tests/feedback tests/pipeline tests/rollouts \
	tests/experiments tests/ingest tests/audit tests/postgres
test-postgres: $(STAMP)
	bash tests/ensure_system.sh
	# the OpenAPI fuzz run gets 5 examples per operation and phase here (25 in `make test`): bounded, it still sends
	# every operation's boundary values to PostgreSQL (it found the 2^31 id bug there) within .ci/run's budget
	IOTSPHERE_TEST_DATABASE=postgresql IOTSPHERE_TEST_FUZZ_EXAMPLES=5 $(BIN)/pytest -q $(PYTEST_ARGS) $(POSTGRES_TESTS)

# the benchmarks reuse the tests' harness (private brokers, PostgreSQL schemas) and compare with DuckDB: dev extras
bench: $(STAMP)
	bash tests/ensure_system.sh
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
