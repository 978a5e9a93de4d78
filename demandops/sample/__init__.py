"""The sample data generator: realistic raw feeds in the shapes real companies send."""
