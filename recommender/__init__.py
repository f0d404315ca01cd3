"""Semantic product recommender: the core library (no FastAPI, no Celery)."""
