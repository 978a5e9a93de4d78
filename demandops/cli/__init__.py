"""The `demandops` command line."""

from demandops.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
