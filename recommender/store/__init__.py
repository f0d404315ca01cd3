"""Vector storage: one Protocol over our own types, with an embedded and a server backend."""

from recommender.store.base import CollectionSpec, PointToWrite, ScoredPoint, StoredPoint, VectorStore

__all__ = ["CollectionSpec", "PointToWrite", "ScoredPoint", "StoredPoint", "VectorStore"]
