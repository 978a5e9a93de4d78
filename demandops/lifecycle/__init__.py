"""The model lifecycle: the MLflow registry, promotion gates, champions, lineage."""
