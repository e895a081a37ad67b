"""A local Aircall Analytics API for the demo, for tests and for offline pipeline checks."""

from tap_aircall_analytics.simulator.server import Simulator, SimulatorConfig

__all__ = ["Simulator", "SimulatorConfig"]
