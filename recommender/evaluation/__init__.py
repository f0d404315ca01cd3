"""Offline evaluation: leave-one-out, full ranking, the methods compared in one run."""
