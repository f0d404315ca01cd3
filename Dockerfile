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
RUN pip install ".[postgres]"

EXPOSE 8000
CMD ["recommender", "serve", "--host", "0.0.0.0", "--port", "8000"]
