"""Command line: `aircall-analytics-simulator --port 8765 --seed 1`."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import signal
import sys
import threading

from tap_aircall_analytics.simulator.dialects import OPTIONS
from tap_aircall_analytics.simulator.server import Simulator, SimulatorConfig

HELP = {
    "seed": "seed of the generated data: the same seed always serves the same rows",
    "api_id": "API ID accepted for Basic authentication",
    "api_token": "API token accepted for Basic authentication",
    "access_token": "token accepted for Bearer authentication",
    "analytics_plus": "without it, every call answers 403 (no Analytics+ add-on)",
    "calls_per_day": "calls generated per day (Call History and ringing attempts scale with it)",
    "export_seconds": "time an export stays PENDING",
    "export_seconds_per_day": "more time PENDING per day of the export's range",
    "export_jitter": "export times vary by up to this share either way (0.5: +-50%%), the same for the same request",
    "fail_first_export": "the first export of each report ends FAILED",
    "fail_over_days": "exports over this many days end FAILED with 'too many rows'",
    "fail_days": "exports including one of these days (YYYY-MM-DD,...) end FAILED",
    "fail_report": "every export of this report ends FAILED at once",
    "forget_first_export": "the first export answers 404 once completed",
    "refuse_first_download": "the first download of each export answers 403",
    "error_every": "every Nth API request answers 500",
    "cut_download_once": "the first download is cut off half-way",
    "gzip_downloads": "serve files with Content-Encoding: gzip (Content-Length counts the compressed bytes)",
    "link_seconds": "lifetime of a download link",
    "export_ttl_seconds": "an export answers 404 this long after its creation",
    "rate_limit": "API requests allowed per rate window (then 429 with Retry-After)",
    "rate_window_seconds": "length of the rate window",
    "rate_limit_style": "how the limiter counts: fixed (windows), sliding (a log of the last window) or bucket "
    "(a token bucket of --rate-bucket-size, refilled at --rate-limit per window)",
    "rate_reset_style": "X-AircallApi-Reset as a UNIX time (epoch) or as the seconds left (seconds)",
    "rate_bucket_size": "the token bucket's capacity: Remaining never goes above it (default: a sixth of the limit)",
    "background_per_minute": "the company's other integrations: requests a minute on the same rate limit",
    "background_burst": "the other integrations send their requests this many at once",
    "zipped": "serve files as zip archives holding one CSV",
    "bom": "start files with a UTF-8 BOM",
    "crlf": "end lines with CRLF",
    "shuffle_columns": "shuffle the column order",
    "drop_column": "leave this contract column out of every file",
    "extra_column": "add this text column, unknown to the contract, to every file",
    "typed_column": "add this column, unknown to the contract, as LABEL:KIND (integer, duration or percent)",
    "rename_column": "serve a contract column under another label, as OLD=NEW",
    "bad_cells_every": "about one row in N holds 'n/a' in its last typed, non-key column",
    "extra_report": "serve one more report name, unknown to the tap's catalogue (per user and day)",
    "empty_days": "days (YYYY-MM-DD,...) with no data",
    "reuse_files": "serve a request asked before from the file made then (large exports in benchmarks)",
    "serve_file": "serve this file as every export's file, byte for byte (a hostile file; --zipped announces a zip)",
    "echo_headers": "error answers quote the request's headers, Authorization included",
    "export_status": "a ready export answers this status instead of COMPLETED (e.g. CANCELLED)",
    "drop_export_field": "a completed export is answered without this field (e.g. exportID)",
    "export_id_prefix": "export IDs start with this text (e.g. ../../)",
    "link_scheme": "the scheme of download links (e.g. ftp)",
    "link_userinfo": "USER:PASSWORD written into download links",
    "link_path_token": "a token written into download links' paths (as some object stores do)",
    "silent_host": "api or downloads: that host takes requests and never answers",
    "trickle_seconds": "the download host sends one byte of the file every this many seconds",
    "endless_download": "downloads have no Content-Length and never end",
    "gzip_bomb_mb": "downloads are gzip-encoded: a few KB that decode to this many MB",
    "answer_headers": "headers every API answer carries, as NAME=VALUE;NAME=VALUE (e.g. Retry-After=inf)",
    "poll_answer": "huge (100 MB) or deep (JSON nested 100,000 deep): every poll's answer",
    "error_message": "the errorMessage of every export that fails (with --fail-report)",
    "now": "the simulator's clock, an ISO 8601 instant: no export holds a row after it (default: the real time)",
    "dialect": "serve the same data in other spellings, comma-separated, one per aspect: "
    + ", ".join(f"{option} ({aspect})" for option, (aspect, _) in OPTIONS.items()),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aircall-analytics-simulator",
        description="Serve a local Aircall Analytics API (exports, downloads, faults) until stopped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port of the API (0: any free port)")
    parser.add_argument(
        "--download-host",
        default="127.0.0.2",
        help="address of the download host, another host than the API (default 127.0.0.2)",
    )
    parser.add_argument("--download-port", type=int, default=0, help="port of the download host (0: any)")
    for config_field in dataclasses.fields(SimulatorConfig):
        flag = "--" + config_field.name.replace("_", "-")
        default = config_field.default
        text = HELP.get(config_field.name, "")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
        elif "frozenset" in str(config_field.type):
            parser.add_argument(flag, type=_days, default=frozenset(), help=text)
        else:
            annotation = str(config_field.type)
            kind = float if "float" in annotation else int if "int" in annotation else str
            parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
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
        file=sys.stderr,
        flush=True,
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
