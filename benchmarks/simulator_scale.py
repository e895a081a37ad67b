"""Simulator scale: one 1,000,000-row Call History export, generated and served.

    .venv/bin/python benchmarks/simulator_scale.py

Prints rows/s of generation, download speed and the simulator's peak memory (Linux).
"""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tap_aircall_analytics import clock

FIRST_DAY = clock.today(dt.timezone.utc) - dt.timedelta(days=60)  # 20 days inside Call History's 6 months
LAST_DAY = FIRST_DAY + dt.timedelta(days=19)
AUTH = ("demo-api-id", "demo-api-token")
EXPORTS = "/v1/analytics/report/export"
BODY = {
    "input": {
        "reportName": "CALLS_HISTORY",
        "filter": {
            "dateFilter": {
                "absoluteRange": {"fromDate": str(FIRST_DAY), "toDate": str(FIRST_DAY + dt.timedelta(days=19))}
            },
            "timezone": "Europe/Paris",
        },
    }
}


def main() -> None:
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_aircall_analytics.simulator",
            "--port",
            "0",
            "--calls-per-day",
            "50000",
            "--export-seconds",
            "0",
            "--rate-limit",
            "100000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = simulator.stdout.readline().strip()
        started = time.perf_counter()
        export = requests.post(url + EXPORTS, json=BODY, auth=AUTH, timeout=30).json()
        while (export := requests.get(f"{url}{EXPORTS}/{export['exportID']}", auth=AUTH, timeout=30).json())[
            "status"
        ] == "PENDING":
            time.sleep(0.05)
        generated = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "export.csv"
            started = time.perf_counter()
            with requests.get(export["downloadUrl"], stream=True, timeout=60) as response, open(path, "wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
            served = time.perf_counter() - started
            with open(path, newline="", encoding="utf-8") as handle:
                rows = sum(1 for _ in csv.reader(handle)) - 1
            size = path.stat().st_size / 1e6
        with open(f"/proc/{simulator.pid}/status") as status:
            peak = next(line for line in status if line.startswith("VmHWM"))
        print(
            f"{rows:,} rows ({size:.0f} MB) generated in {generated:.1f} s ({rows / generated:,.0f} rows/s), "
            f"served in {served:.1f} s ({size / served:.0f} MB/s); simulator peak RSS "
            f"{int(peak.split()[1]) / 1024:.0f} MB"
        )
    finally:
        simulator.terminate()
        simulator.wait()


if __name__ == "__main__":
    main()
