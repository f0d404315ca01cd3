"""The training job (``job``): the sequence model (``sequence``), then the pipeline's parts over it
(``parts``: co-occurrence, the item tower and the learned ranker), published together; one run at a time
(``runs``)."""
