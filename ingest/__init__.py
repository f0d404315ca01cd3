"""Background work as Celery tasks: bulk catalog imports, profile refreshes, re-embedding."""
