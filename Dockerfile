FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
WORKDIR /app

# The CPU build of torch first, so that nothing pulls the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY ingest ./ingest
COPY api ./api
COPY cli ./cli
# The wheel, installed as a user would install it (tests/test_installed_package.py checks the same wheel).
RUN pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip install "$(ls /tmp/wheels/*.whl)[postgres,compiled-ranker,fine-tune]" \
    && rm -rf /tmp/wheels
# The embedding model's int8 ONNX export (data/models/onnx), made once here instead of at each container's start.
RUN python -c "from recommender.embedding import build_embedder as b; from recommender.settings import EmbeddingSettings as s; b(s())"

EXPOSE 8000
CMD ["recommender", "serve", "--host", "0.0.0.0", "--port", "8000"]
