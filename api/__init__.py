"""FastAPI app: a thin HTTP layer over recommender/ and ingest/."""
