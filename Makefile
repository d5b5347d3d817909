# Two entry points: `make demo` runs the flights pipeline end to end, `make test` runs every test.
# Both create the virtualenv themselves on a fresh Debian/Ubuntu machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-netns bench install clean controlplane-down schema

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,examples,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/flights/get_data.py
	$(BIN)/dataops run examples/flights/pipeline.yaml

# As root, the test target brings up the OpenStack control plane on 127.0.0.42 first (idempotent; see
# devstack/README.md; it also installs openssh-server for the namespace hosts); without root the OpenStack and
# namespace-host tests skip with the reason.
test: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then devstack/controlplane.sh up; \
	else echo "not root: OpenStack tests will skip (run: sudo devstack/controlplane.sh up)"; fi
	$(BIN)/python -m pytest

# Only the real playbook runs against network-namespace hosts (root and Debian's openssh-server needed).
test-netns: $(STAMP)
	$(BIN)/python -m pytest -m netns

controlplane-down:
	devstack/controlplane.sh down

# The pipeline file's JSON Schema and reference page in docs/, generated from its pydantic models: run after changing
# them (a unit test fails while the committed copies differ).
schema: $(STAMP)
	$(BIN)/dataops schema pipeline --output docs/pipeline.schema.json
	$(BIN)/dataops schema pipeline --format markdown --output docs/pipeline-reference.md

# Each benchmark prints medians and ratios against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench dataprep
	$(BIN)/python -m bench dataprep --scale 30,300
	$(BIN)/python bench/tuning.py
	$(BIN)/python -m bench onnx_predict
	$(BIN)/python bench/serving.py --install-mlflow --install-mlserver
	@if [ -n "$$OS_CLOUD" ]; then $(BIN)/python -m bench cluster_ready --heat-only --workers 2,8,32; \
	else echo "cluster_ready: OS_CLOUD not set (the control plane's cloud is dataops-ci); skipped"; fi
	$(BIN)/python -m bench drift --install-evidently --big

clean:
	rm -rf $(VENV) .dataops
