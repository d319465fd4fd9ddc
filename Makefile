# Everyday targets. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The C extensions are built at install: their sources are part of what the stamp tracks.
NATIVE := schemas/_avro_batch.c schemas/_event_dates.c \
	schemas/text_bounds.h consumers/_seen_search.c
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(NATIVE) | sha256sum | cut -c1-12)
# Test processes: most end-to-end tests wait on brokers and group joins, so three share
# two cores well. Every test has its own topics, groups, directories and schemas; the tests
# sharing a three-node Kafka cluster are one xdist group, so one process starts it.
TEST_WORKERS ?= 3

.PHONY: run test lint typecheck bench install clean

$(STAMP): pyproject.toml $(NATIVE)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/meterpipe up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	bash deploy/install-tools.sh
	$(BIN)/python -m tests.kafka_dist
	$(BIN)/python -m tests.registry_dist
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(BIN)/meterpipe bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
