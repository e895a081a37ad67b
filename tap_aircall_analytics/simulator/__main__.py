"""Command line: `aircall-analytics-simulator --port 8765 --seed 1`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import signal
import sys
import threading

from tap_aircall_analytics.simulator.server import Simulator, SimulatorConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aircall-analytics-simulator",
        description="Serve a local Aircall Analytics API (exports, downloads, faults) until stopped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port of the API (0: any free port)")
    parser.add_argument("--download-host", default="127.0.0.2",
                        help="address of the download host, another host than the API (default 127.0.0.2)")
    parser.add_argument("--download-port", type=int, default=0, help="port of the download host (0: any)")
    for config_field in dataclasses.fields(SimulatorConfig):
        flag = "--" + config_field.name.replace("_", "-")
        default = config_field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif "frozenset" in str(config_field.type):
            parser.add_argument(flag, type=_days, default=frozenset(), help="comma-separated YYYY-MM-DD days")
        else:
            annotation = str(config_field.type)
            kind = float if "float" in annotation else int if "int" in annotation else str
            parser.add_argument(flag, type=kind, default=default, help=f"default: {default}")
    return parser


def _days(text: str) -> frozenset[dt.date]:
    return frozenset(dt.date.fromisoformat(day) for day in text.split(",") if day)


def main(argv: list[str] | None = None) -> None:
    """Start the simulator and print the base URL it serves."""
    args = vars(_parser().parse_args(argv))
    hosts = {name: args.pop(name) for name in ("host", "port", "download_host", "download_port")}
    config = SimulatorConfig(**args)
    simulator = Simulator(config, **hosts).start()
    print(simulator.api_url, flush=True)
    print(
        f"Aircall Analytics simulator: API {simulator.api_url}, downloads {simulator.download_url}, "
        f"credentials {config.api_id}:{config.api_token} or Bearer {config.access_token}",
        file=sys.stderr, flush=True,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
