"""Scripts run by `make` and the CI/CD pipelines: model validation, packaging, Azure ML."""
