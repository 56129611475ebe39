# Two commands for a new user: `make demo` and `make test`. Each sets up .venv itself and
# installs what it needs: the demo the `bench` extra, the tests the `dev` extra (bench + tools).
VENV   := .venv
PYTHON := $(VENV)/bin/python

.PHONY: demo test lint clean
.PRECIOUS: $(VENV)/.installed-%

# One stamp per extra installed (.installed-bench, .installed-dev); redone when pyproject changes.
$(VENV)/.installed-%: pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-bench
	$(PYTHON) examples/demo.py

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
