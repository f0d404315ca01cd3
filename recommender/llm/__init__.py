"""LLM re-ranking, grounded explanations and chat. Every feature also works with no LLM configured."""
