"""One recommendation pipeline: sources -> merge -> features -> ranker -> rules -> LLM stages.

The API routes, the CLI, the Celery tasks and ``recommender eval`` all call
:class:`recommender.pipeline.pipeline.Pipeline`, so what the evaluation measures is what is served.
"""
