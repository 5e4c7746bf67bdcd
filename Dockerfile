# The ecoalign application image: API, Celery workers and beat all run from it (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ECOALIGN_MIGRATIONS_DIR=/app/migrations

# OpenCV (pulled in by the OCR package) needs these shared libraries at import time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, from the CPU-only index: an unpinned torch from PyPI resolves to a CUDA build of several GB.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

# Dependencies change less often than the code: install them in their own layer.
COPY pyproject.toml README.md ./
COPY ecoalign/__init__.py ecoalign/__init__.py
RUN pip install ".[offline]" && pip uninstall -y ecoalign

COPY ecoalign ecoalign
COPY workers workers
COPY api api
COPY migrations migrations
COPY alembic.ini ./
RUN pip install --no-deps ".[offline]"

RUN useradd --create-home --uid 10001 ecoalign
USER ecoalign

EXPOSE 8000
CMD ["ecoalign", "serve", "--host", "0.0.0.0", "--port", "8000"]
