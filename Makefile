# Two commands for a fresh machine (see README):
#   make run    builds the index of seeds/ when missing, then starts the chat UI
#   make test   installs the test tools (and Debian's chromium) and runs the whole suite
# Both create .venv on first use; later runs only redo what pyproject.toml changed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: run test install install-test bench eval clean

run: $(VENV)/.installed
	$(BIN)/rag serve --index seeds=.rag/index --docs seeds --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run

eval: $(VENV)/.installed-test
	$(BIN)/rag eval --out eval/out

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# torch goes in first and pinned, so nothing later pulls a CUDA build.
# --no-cache-dir: the environment is ~3.4 GB; pip's cache would hold a second copy of what it
# fetched, and a CI machine with little free disk has failed mid-install (ENOSPC).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-cache-dir torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[ui,eval,llm,ocr,milvus,fast]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed scripts/install-browser.sh
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[ui,eval,llm,ocr,milvus,fast,bench,test]'
	bash scripts/install-browser.sh
	touch $@

clean:
	rm -rf $(VENV) .rag
