# Deep Draw: one entry point for every routine task. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The official files: this workplace's copy where it exists, else what make download fetches.
DATA_DIR ?= $(if $(wildcard ../shared/quickdraw),../shared/quickdraw,data/quickdraw)
API_PORT ?= 8000
FRONTEND_PORT ?= 8501
# The address players' browsers reach this machine by. The demo serves this machine only, unless
# opened on purpose (make demo PUBLIC_HOST=192.168.1.20): the app relays teach, delete and submit
# for whoever reaches it, and the browser asks the API for live guesses itself.
PUBLIC_HOST ?= 127.0.0.1
LISTEN_HOST := $(if $(filter 127.0.0.1 localhost,$(PUBLIC_HOST)),127.0.0.1,0.0.0.0)
API_HOST ?= $(LISTEN_HOST)
FRONTEND_HOST ?= $(LISTEN_HOST)
# The app's origins, which the API lets the player's browser ask.
comma := ,
APP_ORIGINS := "http://localhost:$(FRONTEND_PORT)","http://127.0.0.1:$(FRONTEND_PORT)"$(if \
	$(filter-out 127.0.0.1 localhost,$(PUBLIC_HOST)),$(comma)"http://$(PUBLIC_HOST):$(FRONTEND_PORT)")
MLFLOW_PORT ?= 5000
WORKERS ?= 2

.PHONY: help install demo api frontend migrate test lint download train train-seed train-rnn bench bench-peers compose-smoke compose-smoke-offline \
	prepare retrain train-distributed mlflow-ui bench-training scale-check

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: requirements.txt requirements/*.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed ## create .venv and install the pinned dependencies

demo: install ## run the API and the Streamlit app on the shipped model (Ctrl-C stops both)
	@echo "API on http://$(PUBLIC_HOST):$(API_PORT)/docs, app on http://$(PUBLIC_HOST):$(FRONTEND_PORT)"
	@trap 'kill 0' INT TERM EXIT; \
	CORS_ORIGINS='[$(APP_ORIGINS)]' $(PY) -m api.serve --host $(API_HOST) --port $(API_PORT) & \
	API_URL=http://127.0.0.1:$(API_PORT) PUBLIC_API_URL=http://$(PUBLIC_HOST):$(API_PORT) \
		$(VENV)/bin/streamlit run frontend/app.py \
		--server.address $(FRONTEND_HOST) --server.port $(FRONTEND_PORT) --server.headless true & \
	wait

api: install ## run the API alone, one worker per core (one process: uvicorn api.main:app)
	$(PY) -m api.serve --host $(API_HOST) --port $(API_PORT)

frontend: install ## run the Streamlit app alone (API_URL defaults to the local API)
	API_URL=$${API_URL:-http://127.0.0.1:$(API_PORT)} $(VENV)/bin/streamlit run frontend/app.py \
		--server.address $(FRONTEND_HOST) --server.port $(FRONTEND_PORT) --server.headless true

migrate: install ## bring $$DATABASE_URL (default the SQLite file under data/) to the newest schema
	$(PY) -m store.migrate

test: install ## lint, format check and the test suite (no ../shared, no network)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: install ## ruff lint and format check
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

download: install ## fetch numpy_bitmap files of all 345 categories from Google's bucket into data/quickdraw (resumable)
	$(PY) -m training.download --all --data-dir data/quickdraw

train: install ## the shipped models from DATA_DIR: the CNN on every category, its embedding, the player's model, the ensemble
	$(PY) -m training.train cnn --data-dir $(DATA_DIR) --only-bitmaps --no-prior-correction --time-budget-min 38 \
		--dense 256 --output-dir runs/bitmaps
	$(PY) -m training.train cnn --data-dir $(DATA_DIR) --init-from runs/bitmaps --learning-rate 1e-3 --epochs 5 \
		--time-budget-min 34
	$(PY) -m training.embedding --data-dir $(DATA_DIR) --replace
	$(PY) -m training.prototypes --data-dir $(DATA_DIR)
	$(PY) -m training.compare --data-dir $(DATA_DIR)

train-seed: install ## train the original Deep Draw architecture on the same split, for comparison
	$(PY) -m training.train cnn --arch seed --data-dir $(DATA_DIR) --output-dir runs/seed

train-rnn: install ## train and export the stroke RNN
	$(PY) -m training.train rnn --data-dir $(DATA_DIR)

retrain: install ## players' kept drawings back into training: export + train the CNN with them + compare with the served CNN (ARGS="--promote -- --epochs 8")
	$(PY) -m training.retrain --data-dir $(DATA_DIR) $(ARGS)

prepare: install ## convert DATA_DIR's official files into TFRecord shards (make train does it when needed)
	$(PY) -m training.prepare --data-dir $(DATA_DIR)

train-distributed: install ## train the CNN on WORKERS local processes (tf.distribute via TF_CONFIG on 127.0.0.1)
	$(PY) -m training.launch --workers $(WORKERS) --log-dir runs/distributed -- cnn --data-dir $(DATA_DIR)

mlflow-ui: install ## browse the MLflow runs and registered models (default store: mlruns.db + mlruns/)
	$(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlruns.db} \
		--default-artifact-root $(CURDIR)/mlruns --host 127.0.0.1 --port $(MLFLOW_PORT)

bench-training: install ## prepare, tf.data and training steps at 0.2 M / 2 M / 10 M drawings (synthetic; ~16 GB in /tmp)
	$(PY) bench/training_scale.py

bench: install ## API latency benchmark (starts its own server)
	$(PY) bench/api_latency.py

bench-peers: install ## Deep Draw against FastAPI+TF, FastAPI+onnxruntime, BentoML, Ray Serve with wrk, ~10 min (ARGS="--only plain deepdraw-serve")
	@command -v wrk >/dev/null || (echo "bench-peers needs wrk (e.g. apt-get install wrk)" && exit 1)
	$(PY) bench/peers.py $(ARGS)

compose-smoke: ## build and check the docker compose demo end to end
	bash scripts/compose_smoke.sh

compose-smoke-offline: ## the same on a machine without Docker Hub: local engine, base image and wheelhouse
	bash scripts/docker_engine.sh && bash scripts/compose_smoke.sh --offline

scale-check: install ## 3 API replicas + PostgreSQL + nginx under wrk, one replica killed (deploy/compose.scale.yml)
	$(PY) scripts/scale_check.py $(if $(OFFLINE),--offline)
