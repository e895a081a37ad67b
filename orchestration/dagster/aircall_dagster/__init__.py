"""Dagster definitions that run this repository's Meltano pipeline on a daily schedule."""

from aircall_dagster.definitions import defs

__all__ = ["defs"]
