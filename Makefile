# Two entry points that work on a fresh machine (Python >= 3.11 and Java 17 for Spark):
#   make sample   build .venv, write the built-in sample lake and run the Spark job on it
#   make test     build .venv, lint (ruff, mypy), and run every test (what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: sample test lint validator clean

$(BIN)/sr2fhir: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

sample: $(BIN)/sr2fhir
	$(BIN)/sr2fhir sample --output sample-output

# mypy's files and settings are in pyproject.toml ([tool.mypy]), the import contracts too ([tool.importlinter]).
lint: $(BIN)/sr2fhir
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The HL7 FHIR validator for the profile tests (tests/profile_validation): pinned jars from Maven Central (mvn)
# and FHIR packages from npm, cached in ~/.cache/sr2fhir/fhir-validator ($$SR2FHIR_VALIDATOR_CACHE); quick once
# there. Without java, mvn or npm it says so and the tests skip, unless SR2FHIR_REQUIRE_VALIDATOR=1 (CI).
validator: $(BIN)/sr2fhir
	$(BIN)/python tests/profile_validation/fhir_validator.py install

# Two sets of tests run at once, each on two workers: the Spark tests are mostly latency (JVM starts, Delta
# commits, small jobs) and leave the CPU half idle, which the CPU-bound rest (mapping, the validator JVMs) fills.
# Spark tests go to a worker by whole module (loadfile): many share a module-scoped run, made once. The other
# set's output is shown when both are done, so the two progress lines do not interleave. Each set names its
# slowest tests (CI's time budget is 30 minutes).
test: lint validator
	@log=$$(mktemp); \
	$(BIN)/python -m pytest -n 2 -q --durations=12 -m "not spark" >"$$log" 2>&1 & other=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=12 -m spark; spark=$$?; \
	wait $$other; other=$$?; \
	echo "--- tests not marked spark:"; cat "$$log"; rm -f "$$log"; \
	exit $$(( spark != 0 || other != 0 ))

clean:
	rm -rf $(VENV) sample-output
