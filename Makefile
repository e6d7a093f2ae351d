# The two set-up commands of README.md. Both create/use .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.benchkit-installed

.PHONY: demo test test-fast install clean-demo

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/benchkit demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)  # the fast subset while developing; `make test` (CI) runs everything
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

clean-demo:
	rm -rf runs/demo
