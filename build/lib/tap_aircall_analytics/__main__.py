"""`python -m tap_aircall_analytics` runs the tap."""

from tap_aircall_analytics.tap import TapAircallAnalytics

TapAircallAnalytics.cli()
