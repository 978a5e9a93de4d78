"""demandops: weekly demand forecasting across regions, stores and products."""

__version__ = "0.1.0"
