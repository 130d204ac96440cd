"""Stores: where an index keeps its chunk vectors, sentence views and keyword index."""
