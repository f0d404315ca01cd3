"""Sequence models over item-id histories: one transformer encoder, swappable training objectives."""
