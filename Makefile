# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test install lint typecheck unit bench clean web web-test chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (PYTHON=$(PYTHON))")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) …"
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install
	@$(MAKE) --no-print-directory web || echo "make run: the web app did not build; / shows the server's landing page instead"
	$(BIN)/sportsbook serve $(ARGS)

# The React web app (clients/web, docs/WEB.md): `npm ci` when the lockfile changed,
# `npm run build` (tsc + vite) when a source changed; the server serves clients/web/dist
# at /. Without npm this warns and does nothing (the server shows its landing page).
WEB := clients/web
WEB_MODULES := $(WEB)/node_modules/.package-lock.json
WEB_STAMP := $(WEB)/dist/.built
WEB_SOURCES := $(WEB)/package.json $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json \
	$(shell find $(WEB)/src -type f 2>/dev/null)

web:
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(WEB_STAMP); \
	else \
	  echo "make web: npm not found: the web app is not built (install Node.js 20.19+ with npm); the server shows its landing page at /"; \
	fi

$(WEB_MODULES): $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

$(WEB_STAMP): $(WEB_MODULES) $(WEB_SOURCES)
	cd $(WEB) && npm run build
	@touch $@

# Debian's Chromium for the browser tests (tests/browser); never a downloaded browser.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "make test: installing Debian's chromium for the browser tests"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium \
	    || { $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium; }; \
	fi

# The web app's unit tests (vitest); the build it needs for tests/browser.
web-test: chromium
	@command -v npm >/dev/null 2>&1 || { echo "make test: npm is required for the web app (Node.js 20.19+ with npm)"; exit 1; }
	@$(MAKE) --no-print-directory $(WEB_STAMP)
	cd $(WEB) && npx vitest run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit tests/acceptance -q

# The integration tests use a real Kafka broker (infra/kafka/kafka.sh) and a real
# PostgreSQL (infra/postgres/pg.sh): reuse each one that is running, else start it
# and stop it again on exit (also when pytest fails or on Ctrl-C; a reused one is
# left running). Exits with pytest's status.
KAFKA_SH := infra/kafka/kafka.sh
PG_SH := infra/postgres/pg.sh
test: install lint typecheck web-test
	@started=0; pg_started=0; kafka="127.0.0.1:$${KAFKA_PORT:-19092}"; \
	trap 'rc=$$?; trap "" INT TERM; \
	  if [[ $$started == 1 ]]; then $(KAFKA_SH) stop || true; fi; \
	  if [[ $$pg_started == 1 ]]; then $(PG_SH) stop || true; fi; exit $$rc' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	if $(KAFKA_SH) status >/dev/null; then \
	  echo "make test: reusing the running Kafka on $$kafka"; \
	else \
	  started=1; $(KAFKA_SH) up || exit; \
	  echo "make test: started Kafka on $$kafka (stopped again at the end)"; \
	fi; \
	if $(PG_SH) status >/dev/null; then \
	  echo "make test: reusing the running PostgreSQL"; \
	else \
	  pg_started=1; $(PG_SH) start || exit; \
	  echo "make test: started PostgreSQL (stopped again at the end)"; \
	fi; \
	export SPORTSBOOK_TEST_DATABASE="$$($(PG_SH) url)"; \
	SPORTSBOOK_TEST_KAFKA="$$kafka" $(BIN)/pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/odds_fanout.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/results
