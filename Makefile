# authscale: `make bench` runs the experiments, `make test` the tests.
# Both create the virtual environment when it is missing.

PYTHON_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.authscale-installed
PROFILE ?= quick
VARIANT ?= session-redis
RUN ?= results/latest
PROCESSES ?= 1

.PHONY: setup test test-fast lint bench calibrate generator-ceiling soak ui report \
	reference compose compose-images bench-compose fuzz clean-venv

setup: $(STAMP)

# Reinstall whenever the declared dependencies or the lock change. --no-compile: modules
# are compiled when first imported instead (a fresh venv 14 s sooner here; most installed
# modules are never imported).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile \
		-c requirements.lock -e '.[dev]'
	@touch $@

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

# The inner loop: everything but the tests marked slow (real benches, Locust runs, the
# fuzzer), in under a minute here.
test-fast: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"

# The main job: PROFILE=smoke|quick|full or a path to your own profile .toml.
# Latency rates come from results/calibration.json when `make calibrate` made one here;
# CALIBRATION=none keeps the profile's fixed rates, CALIBRATION=path/to/calibration.json
# picks another.
bench: setup
	$(PY) -m loadtests.bench --profile $(PROFILE) --processes $(PROCESSES) \
		$(if $(CALIBRATION),--calibration $(CALIBRATION))

# Each variant's auth cost against its primitive, and its capacity; prints the table and
# writes results/calibration.json for make bench (about 8 minutes on 2 cores).
calibrate: setup
	$(PY) -m loadtests.calibrate

# How much load authscale-loadgen offers from its one core, against nginx (apt-get install
# nginx-light), in multiples of the none control's calibrated capacity (under a minute).
generator-ceiling: setup
	$(PY) -m loadtests.ceiling

# Rebuild a run's report from its raw data alone.
report: setup
	$(PY) -m analysis $(RUN)

# Make a run the committed reference: only what its figures are built from, report rebuilt.
reference: setup
	$(PY) -m analysis pack $(RUN) results/reference

# Regenerate docker-compose.yml from the runner's own commands.
compose: setup
	$(PY) -m loadtests.compose

# The images docker-compose.yml needs: the official ones where a registry answers, else
# built from Debian packages (debootstrap; cached). Docker, or podman through its socket.
compose-images: setup
	$(PY) -m loadtests.stack images

# The stack for real: up, each server verified, one variant natively and in its container
# side by side, down, nothing left behind (a few minutes, image build included).
bench-compose: setup
	$(PY) -m loadtests.stack smoke

# The faults at full length: Redis stopped under load, then twice the calibrated capacity
# for 30 s, against session-redis and jwt-hs256-revocable (about 5 minutes).
soak: setup
	$(PY) -m loadtests.bench --profile soak

# Locust's web UI on http://127.0.0.1:8089 against one variant (with its own Redis if needed).
ui: setup
	$(PY) -m loadtests.ui --variant $(VARIANT) --processes $(PROCESSES)

# The fuzzer with ten times the examples CI runs.
fuzz: setup
	FUZZ_EXAMPLES=10000 $(PY) -m pytest tests/servers/test_fuzz.py

lint: setup
	$(PY) -m ruff check .

clean-venv:
	rm -rf $(VENV)
