# Two commands: `make demo` and `make test`. Both create .venv when missing and
# install the package (editable, with the test extra and the peer frameworks the
# cross-check tests compare with) into it first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.snnchip-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,peers]"
	# sinabs 3.1 declares nir<=1.0.4 but runs with ours; without --no-deps pip would downgrade nir
	$(PY) -m pip install --quiet --no-deps sinabs==3.1.3
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/snnchip demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
