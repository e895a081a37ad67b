"""The SDK's standard tap tests, for all twelve streams, against the simulator."""

from __future__ import annotations

import atexit
import datetime as dt

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from conftest import CREDENTIALS, FAST_POLLING, TODAY
from tap_aircall_analytics.simulator import Simulator, SimulatorConfig
from tap_aircall_analytics.tap import TapAircallAnalytics

# The test class is built at import time, so the simulator starts here, not in a fixture. An
# unknown column and bad cells give every stream's raw-text properties values to check.
SIMULATOR = Simulator(SimulatorConfig(rate_limit=100_000, extra_column="Queue", bad_cells_every=3)).start()
atexit.register(SIMULATOR.stop)

TestTapAircallAnalytics = get_tap_test_class(
    TapAircallAnalytics,
    config={
        **CREDENTIALS,
        **FAST_POLLING,
        "api_url": SIMULATOR.api_url,
        "start_date": (TODAY - dt.timedelta(days=3)).isoformat(),
        "window_days": 2,
    },
    suite_config=SuiteConfig(max_records_limit=500),
)
