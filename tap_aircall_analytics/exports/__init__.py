"""The run's exports: every stream's windows requested, polled and downloaded under one set of limits."""
