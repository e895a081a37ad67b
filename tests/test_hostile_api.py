"""A hostile API: every run at DEBUG, every output scanned for secrets, every failure one line.

Each test runs the tap's command line against the simulator with one fault switched on,
and checks what a user would see: the exit status, the last line of stderr, no traceback,
and none of the credentials (the token, the Basic value, the bearer token) nor any
download link's signature anywhere in stdout or stderr.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import PEAK_RSS, RSS_BOUND_MB

from conftest import TAP, TODAY, selected_catalog, tap_config
from tap_aircall_analytics.api.client import AircallClient, AircallError, ExportJob, stop_sending
from tap_aircall_analytics.clock import RunClock, Stopped
from tap_aircall_analytics.config.catalogue import EXPORTS_PATH
from tap_aircall_analytics.simulator import Simulator

YESTERDAY = (TODAY - dt.timedelta(days=1)).isoformat()
STOPPED_BY_SIGTERM = 128 + signal.SIGTERM


@dataclass
class Run:
    """What one run of the tap wrote."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        return self.stderr.strip().splitlines()[-1]


def start_tap(
    tmp_path: Path,
    catalog: dict,
    config: dict,
    *,
    streams=("calls_history",),
    state_text: str | bytes | None = None,
    environment: dict[str, str] | None = None,
    measured: bool = False,
):
    """Start the tap at DEBUG on `config`; stdout and stderr go to files (a chatty run never blocks).

    `environment` adds variables (and reads settings from them); `measured` starts the tap from a small
    interpreter that writes its peak RSS and CPU seconds to tmp_path / "usage" (see `usage`).
    """
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(selected_catalog(catalog, list(streams))))
    command = [*TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
    if environment:
        command += ["--config", "ENV"]
    if state_text is not None:
        state = tmp_path / "state.json"
        state.write_bytes(state_text) if isinstance(state_text, bytes) else state.write_text(state_text)
        command += ["--state", str(tmp_path / "state.json")]
    if measured:
        command = [sys.executable, "-c", PEAK_RSS, str(tmp_path / "usage"), *command]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAP_AIRCALL_ANALYTICS_")}
    env.update({"PYTHONUNBUFFERED": "1", "LOGLEVEL": "DEBUG", "TMPDIR": str(tmp_path), **(environment or {})})
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        return subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, start_new_session=True)


def usage(tmp_path: Path) -> tuple[float, float]:
    """The peak RSS (MB) and CPU seconds of a run started with `measured`."""
    peak_kb, cpu = (tmp_path / "usage").read_text().split()
    return int(peak_kb) / 1024, float(cpu)


def finish(process: subprocess.Popen, tmp_path: Path, timeout: float = 120) -> Run:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the tap, and the interpreter measuring it if any
        process.wait()
        pytest.fail(f"the run took more than {timeout} s: a wait without a deadline")
    return Run(process.returncode, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())


def run_tap(tmp_path: Path, catalog: dict, config: dict, **options) -> Run:
    return finish(start_tap(tmp_path, catalog, config, **options), tmp_path)


def one_day(simulator, catalog: dict, tmp_path: Path, faults: dict, **settings) -> tuple[Simulator, dict, Run]:
    """Run the tap on yesterday's calls against a simulator with `faults`: the simulator, the config, the run."""
    sim = simulator(**faults)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY, **settings)
    return sim, config, run_tap(tmp_path, catalog, config)


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait for `condition` (a simulator event), failing after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def secrets(config: dict, sim: Simulator) -> list[str]:
    """Every credential the tap was given, and every signature of a link the simulator minted."""
    texts = [config[name] for name in ("api_token", "access_token") if config.get(name)]
    if config.get("api_id"):
        basic = base64.b64encode(f"{config['api_id']}:{config['api_token']}".encode()).decode()
        texts += [basic, basic[:12]]  # a value cut short is still a leak
    signatures = [parse_qs(urlsplit(link).query)["X-Signature"][0] for link in sim.links]
    return texts + signatures


def assert_clean(run: Run, config: dict, sim: Simulator, *also: str) -> None:
    """No secret (nor any of `also`) anywhere in the output, and no traceback."""
    output = run.stdout + run.stderr
    for secret in [*secrets(config, sim), *also]:
        assert secret not in output, f"{secret!r} reached the output"
    assert "Traceback" not in run.stderr


def assert_fails_in_one_line(run: Run, *words: str) -> None:
    """A non-zero exit whose last line is the tap's one-line error, holding each of `words`."""
    assert run.returncode not in (0, STOPPED_BY_SIGTERM), run.stderr[-3000:]
    assert run.last_line.startswith("tap-aircall-analytics: "), run.stderr[-3000:]
    for word in words:
        assert word in run.last_line


BEARER = {"api_id": None, "api_token": None, "access_token": "demo-access-token"}


def bearer(config: dict) -> dict:
    """`config` authenticating with the bearer token instead of the API key."""
    return {key: value for key, value in {**config, **BEARER}.items() if value is not None}


def test_a_signal_during_a_download_that_never_answers_stops_the_run_and_sends_nothing_more(
    simulator, catalog, tmp_path
):
    sim = simulator(silent_host="downloads")
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY, max_concurrent_exports=1)
    process = start_tap(tmp_path, catalog, config)
    wait_until(lambda: "ready after" in (tmp_path / "stderr").read_text())  # polls done: the download is held
    sent = len(sim.api_requests)
    process.send_signal(signal.SIGTERM)
    run = finish(process, tmp_path, timeout=60)  # well inside request_timeout_seconds' 30 s of silence x 5 tries
    assert run.returncode == STOPPED_BY_SIGTERM
    assert len(sim.api_requests) == sent  # no fresh link, no new export
    assert "Stopped by signal 15: the state covers the windows finished so far" in run.stderr
    assert_clean(run, config, sim)


# --- no secret in any output ----------------------------------------------------------


@pytest.mark.parametrize("authentication", ["basic", "bearer"])
def test_a_run_at_debug_shows_no_credential_and_no_link_signature(simulator, catalog, tmp_path, authentication):
    sim = simulator(zipped=True)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY)
    config = bearer(config) if authentication == "bearer" else config
    run = run_tap(tmp_path, catalog, config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"type":"RECORD"' in run.stdout and sim.links
    assert (
        "urllib3.connectionpool" in run.stderr and '"GET [redacted]?[redacted] HTTP/1.1" 200' in run.stderr
    )  # the download's DEBUG line, its path and query scrubbed
    assert_clean(run, config, sim)


REFUSED = "refused the credentials (401"
NO_ANALYTICS = "Analytics+ add-on must be enabled"
ECHOED_REFUSALS = {
    # The API refuses the request and quotes the request's headers back, credential included.
    "401 basic": ({}, "basic", {"api_token": "wrong-api-token-0123456789"}, REFUSED),
    "401 bearer": ({}, "bearer", {"access_token": "wrong-bearer-token-0123456789"}, REFUSED),
    "403 basic": ({"analytics_plus": False}, "basic", {}, NO_ANALYTICS),
    "403 bearer": ({"analytics_plus": False}, "bearer", {}, NO_ANALYTICS),
}


@pytest.mark.parametrize("case", sorted(ECHOED_REFUSALS))
def test_an_error_answer_that_echoes_the_credential_is_quoted_without_it(simulator, catalog, tmp_path, case):
    faults, authentication, credential, words = ECHOED_REFUSALS[case]
    sim = simulator(echo_headers=True, **faults)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY)
    config = {**(bearer(config) if authentication == "bearer" else config), **credential}
    run = run_tap(tmp_path, catalog, config)
    assert_fails_in_one_line(run, words, "denied for")  # the answer is quoted, its secrets are not
    assert "[redacted]" in run.last_line
    assert_clean(run, config, sim)


def test_a_link_with_a_user_and_password_is_never_shown_with_them(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(link_userinfo="linkuser:link-password-0123"))
    assert run.returncode == 0, run.stderr[-3000:]
    link_basic = base64.b64encode(b"linkuser:link-password-0123").decode()
    assert_clean(run, config, sim, "link-password-0123", link_basic)


def test_a_link_that_is_not_http_fails_in_one_line_without_its_signature(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(link_scheme="ftp"))
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "not an http(s) link", "ftp://")
    assert_clean(run, config, sim)


def test_an_export_without_its_id_is_named_not_quoted(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(drop_export_field="exportID"))
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "without exportID", "downloadUrl")
    assert sim.links and "http" not in run.last_line  # the answer held a signed link: not quoted
    assert_clean(run, config, sim)


# --- a stop is a stop ---------------------------------------------------------------

HOLDS = {
    # The export request's answer says no request is left in the rate window, which resets in
    # an hour: the first poll, a millisecond later, waits for the reset.
    "remaining_zero": (
        {"rate_limit": 1, "rate_window_seconds": 3600},
        {"poll_interval_seconds": 0.001, "max_poll_interval_seconds": 0.001},
    ),
    # The first request is refused with 429 and Retry-After: an hour.
    "retry_after": ({"rate_limit": 0, "rate_window_seconds": 3600}, {}),
    # The export takes an hour; the first poll is ten minutes away.
    "poll_wait": ({"export_seconds": 3600}, {"poll_interval_seconds": 600, "max_poll_interval_seconds": 600}),
}


@pytest.mark.parametrize("hold", sorted(HOLDS))
def test_after_a_signal_no_request_is_sent_and_every_wait_ends(simulator, catalog, tmp_path, hold):
    faults, polling = HOLDS[hold]
    sim = simulator(**faults)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY, max_concurrent_exports=1, **polling)
    process = start_tap(tmp_path, catalog, config)
    # After its first request the tap has nothing to send for an hour, unless a stop wakes it.
    wait_until(lambda: len(sim.api_requests) == 1)
    if hold == "remaining_zero":  # the answer is in: the tap is on its way into the rate-limit wait
        wait_until(lambda: "requested" in (tmp_path / "stderr").read_text())
    process.send_signal(signal.SIGTERM)
    run = finish(process, tmp_path, timeout=60)
    assert run.returncode == STOPPED_BY_SIGTERM
    assert len(sim.api_requests) == 1, sim.api_requests
    assert sim.downloads == []
    assert "Stopped by signal 15: the state covers the windows finished so far" in run.stderr
    assert_clean(run, config, sim)


# --- statuses, silences and export IDs -------------------------------------------------


@pytest.mark.parametrize("status", ["CANCELLED", "EXPIRED", "ERROR"])
def test_a_status_that_can_only_mean_failure_fails_the_export_like_failed(simulator, catalog, tmp_path, status):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(export_status=status))
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}: the export failed twice, even for one day: {status}")
    assert f"export {status} (no errorMessage given); retrying once" in run.stderr
    assert sim.exports_created["CALLS_HISTORY"] == 2  # retried once, like FAILED, never polled to the deadline
    assert_clean(run, config, sim)


def test_a_status_the_tap_does_not_know_is_named_while_waiting_and_at_the_deadline(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(export_status="QUEUED"), export_timeout_minutes=0.01)
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "still QUEUED after", "export_timeout_minutes")
    assert "is QUEUED, a status the tap does not know; waiting" in run.stderr
    assert "PENDING" not in run.last_line
    assert_clean(run, config, sim)


@pytest.mark.parametrize(("host", "named"), [("api", "the API"), ("downloads", "the download host")])
def test_a_host_that_never_answers_is_given_up_in_one_line(simulator, catalog, tmp_path, host, named):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(silent_host=host), request_timeout_seconds=0.2)
    assert_fails_in_one_line(
        run, f"calls_history {YESTERDAY}", f"{named} did not answer within 0.2 s", "request_timeout_seconds"
    )
    assert_clean(run, config, sim)


def test_an_export_id_is_quoted_in_the_paths_it_goes_into(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(export_id_prefix="../../elsewhere/"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"type":"RECORD"' in run.stdout
    polls = [path for method, path, _ in sim.api_requests if method == "GET"]
    assert polls and all(path.startswith(EXPORTS_PATH + "/..%2F..%2Felsewhere%2F") for path in polls)
    assert all("/../" not in path for _, path, _ in sim.api_requests)
    assert [d.status for d in sim.downloads] == [200]
    assert not (tmp_path.parent / "elsewhere").exists()  # the file went into the tap's folder, nowhere else
    assert_clean(run, config, sim)


# --- the state, checked before any request ----------------------------------------------

CALLS = {"replication_key": "started_at"}
BAD_STATES = {
    "not JSON": ('{"bookmarks": {"calls_history": ', "is not JSON (Expecting"),
    "empty": ("\n", "is empty"),
    "an array": ("[]", "the state is a JSON array"),
    "bookmarks an array": ('{"bookmarks": []}', "bookmarks are a JSON array"),
    "a stream's state a string": ('{"bookmarks": {"calls_history": "2026-05-01"}}', "calls_history is a JSON string"),
    "partitions not a list": ('{"bookmarks": {"calls_history": {"partitions": "p"}}}', "calls_history has partitions"),
    "progress markers a list": (
        '{"bookmarks": {"calls_history": {"progress_markers": []}}}',
        "calls_history has progress_markers",
    ),
    "a word for a bookmark": (
        json.dumps({"bookmarks": {"calls_history": {**CALLS, "replication_key_value": "yesterday"}}}),
        'calls_history is "yesterday", not a date',
    ),
    "a number for a bookmark": (
        json.dumps({"bookmarks": {"calls_history": {**CALLS, "replication_key_value": 20260501}}}),
        "calls_history is 20260501, not a date",
    ),
    "a day that does not exist": (
        json.dumps({"bookmarks": {"calls_history": {**CALLS, "replication_key_value": "2026-13-45"}}}),
        "not a date (YYYY-MM-DD)",
    ),
    # Read within bounds: a state nested too deep for the JSON reader, or for the SDK's copies of it.
    "nested 100,000 deep": ('{"bookmarks": {"calls_history": ' + "[" * 100_000 + "]" * 100_000 + "}}", "nested"),
    "nested 100 deep": ('{"bookmarks": {"calls_history": {"x": ' + "[" * 100 + "]" * 100 + "}}}", "nested deeper"),
    "not UTF-8": (b'{"bookmarks": {"calls_history": {"replication_key_value": "\xff"}}}', "is not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(BAD_STATES))
def test_a_state_the_tap_cannot_read_stops_the_run_in_one_line_before_any_request(simulator, catalog, tmp_path, case):
    text, words = BAD_STATES[case]
    sim = simulator()
    config = tap_config(sim, start_date=YESTERDAY)
    run = run_tap(tmp_path, catalog, config, state_text=text)
    assert_fails_in_one_line(run, words, "start_date")
    if "calls_history" in words:  # what to do, for that stream alone
        assert "remove calls_history from the state's bookmarks" in run.last_line or "correct it" in run.last_line
    assert sim.api_requests == []
    assert run.stdout == ""
    assert_clean(run, config, sim)


def test_a_bookmark_after_today_is_read_as_today_so_the_stream_syncs(simulator, catalog, tmp_path):
    ahead = (TODAY + dt.timedelta(days=400)).isoformat()
    sim = simulator()
    config = tap_config(sim, start_date=(TODAY - dt.timedelta(days=5)).isoformat(), lookback_days=1)
    state = {"bookmarks": {"calls_history": {**CALLS, "replication_key_value": ahead}}}
    run = run_tap(tmp_path, catalog, config, state_text=json.dumps(state))
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"calls_history: the bookmark {ahead} is after today ({TODAY}): read as today" in run.stderr
    ranges = [body["input"]["filter"]["dateFilter"]["absoluteRange"] for method, _, body in sim.api_requests if body]
    assert ranges == [{"fromDate": (TODAY - dt.timedelta(days=1)).isoformat(), "toDate": TODAY.isoformat()}]
    states = [json.loads(line)["value"] for line in run.stdout.splitlines() if line.startswith('{"type":"STATE"')]
    assert states[-1]["bookmarks"]["calls_history"]["replication_key_value"] == TODAY.isoformat()
    assert_clean(run, config, sim)


# --- export objects of the wrong shape ----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "read"),
    [
        ("downloadUrlExpiresAt", "in an hour", lambda export: export.expires_at is None),
        ("downloadUrlExpiresAt", "2026-05-20T10:35:12", lambda export: export.expires_at.tzinfo is not None),
        ("downloadUrlExpiresAt", 1779273312, lambda export: export.expires_at is None),
        ("isZipCompressed", "false", lambda export: export.zipped is False),
        ("isZipCompressed", "true", lambda export: export.zipped is True),
        ("downloadUrl", {"href": "https://files/x.csv"}, lambda export: export.download_url is None),
        ("errorMessage", {"code": 7}, lambda export: export.error_message == "{'code': 7}"),
    ],
)
def test_an_export_object_of_the_wrong_shape_is_read_without_a_traceback(field, value, read):
    body = {"exportID": "e1", "status": "COMPLETED", "downloadUrl": "https://files/x.csv", field: value}
    export = ExportJob.from_json(body)
    assert read(export)
    export.link_expired()  # comparable with now, whatever the API sent


def test_a_completed_export_whose_link_is_not_a_string_fails_in_words():
    export = ExportJob.from_json({"exportID": "e1", "status": "COMPLETED", "downloadUrl": ["x"]})
    with pytest.raises(AircallError, match="gave no downloadUrl"):
        export.link  # noqa: B018 - reading it is the check


# --- bounds: every answer, header, setting and state read within a bound, every wait with a deadline ---------


def test_a_failed_export_with_an_error_message_of_100000_question_marks_costs_seconds(simulator, catalog, tmp_path):
    sim = simulator(fail_report="CALLS_HISTORY", error_message="?" * 100_000)
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY)
    run = finish(start_tap(tmp_path, catalog, config, measured=True), tmp_path)
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}: the export failed twice, even for one day")
    assert len(run.last_line) < 1500  # the message is quoted cut short
    _, cpu = usage(tmp_path)
    assert cpu < 30  # scrubbing it three times took 33 s for half as many: quadratic
    assert_clean(run, config, sim)


def test_retry_after_inf_is_not_believed(simulator, catalog, tmp_path):
    sim, config, run = one_day(
        simulator, catalog, tmp_path, dict(rate_limit=0, rate_window_seconds=1, answer_headers="Retry-After=inf")
    )
    assert_fails_in_one_line(run, "429 Too Many Requests (gave up after 6 tries)")
    assert len(sim.api_requests) == 6  # each try waited for the window's reset, none for ever
    assert_clean(run, config, sim)


def test_a_rate_limit_of_zero_is_not_believed(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(answer_headers="X-AircallApi-Limit=0"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"type":"RECORD"' in run.stdout
    assert_clean(run, config, sim)


def test_a_poll_answer_of_100_mb_is_refused_with_memory_flat(simulator, catalog, tmp_path):
    sim = simulator(poll_answer="huge")
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY)
    run = finish(start_tap(tmp_path, catalog, config, measured=True), tmp_path)
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "answered more than 1 MiB")
    peak_rss_mb, _ = usage(tmp_path)
    assert peak_rss_mb < RSS_BOUND_MB
    assert_clean(run, config, sim)


def test_a_poll_answer_nested_100000_deep_is_one_line(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(poll_answer="deep"))
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "a body that is not JSON (JSON nested too deep)")
    assert_clean(run, config, sim)


def test_an_export_id_of_300_characters_is_one_line(simulator, catalog, tmp_path):
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(export_id_prefix="x" * 300))
    assert_fails_in_one_line(run, f"calls_history {YESTERDAY}", "an export ID of 336 characters")
    assert_clean(run, config, sim)


def test_a_token_in_a_download_links_path_is_never_logged(simulator, catalog, tmp_path):
    token = "path-token-0123456789abcdef"
    sim, config, run = one_day(simulator, catalog, tmp_path, dict(link_path_token=token))
    assert run.returncode == 0, run.stderr[-3000:]
    assert sim.downloads and all(download.status == 200 for download in sim.downloads)
    assert '"GET [redacted]?[redacted] HTTP/1.1"' in run.stderr  # urllib3's DEBUG line of the download
    assert_clean(run, config, sim, token)


BAD_SETTINGS = {
    "window_days of 1e7": ({"window_days": 10_000_000}, "window_days must be at most 366"),
    "lookback_days of 1e7": ({"lookback_days": 10_000_000}, "lookback_days must be at most 3660"),
    "start_date 9999-12-30": ({"start_date": "9999-12-30"}, "start_date 9999-12-30 is more than 366 days after"),
    "an api_url of file://": ({"api_url": "file:///etc/passwd"}, "api_url must be an http:// or https:// URL"),
    "extra_reports with ../": ({"extra_reports": ["../../outside"]}, "extra_reports holds '../../outside'"),
    "request_timeout_seconds of 1e300": ({"request_timeout_seconds": 1e300}, "request_timeout_seconds must be at most"),
    "max_concurrent_exports of 1e9": ({"max_concurrent_exports": 10**9}, "max_concurrent_exports must be at most 100"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_a_setting_out_of_bounds_stops_the_run_in_one_line_before_any_request(simulator, catalog, tmp_path, case):
    settings, words = BAD_SETTINGS[case]
    sim = simulator()
    config = {**tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY), **settings}
    if "start_date" in settings:
        config.pop("end_date")
    run = run_tap(tmp_path, catalog, config)
    assert_fails_in_one_line(run, words)
    assert sim.api_requests == [] and run.stdout == ""
    assert_clean(run, config, sim)


@pytest.mark.parametrize("name", ["max_disk_mb", "export_timeout_minutes", "max_unzipped_mb"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_number_setting_of_nan_or_inf_from_the_environment_is_refused(simulator, catalog, tmp_path, name, value):
    sim = simulator()
    config = tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY)
    process = start_tap(tmp_path, catalog, config, environment={f"TAP_AIRCALL_ANALYTICS_{name.upper()}": value})
    run = finish(process, tmp_path)
    assert_fails_in_one_line(run, f"{name} must be a finite number, not '{value}'")
    assert sim.api_requests == []
    assert_clean(run, config, sim)


def test_a_connection_test_that_fails_is_one_line(simulator, catalog, tmp_path):
    sim = simulator()
    config = {**tap_config(sim, start_date=YESTERDAY, end_date=YESTERDAY), "api_token": "wrong-api-token-0123"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAP_AIRCALL_ANALYTICS_")}
    result = subprocess.run(
        [*TAP, "--config", str(tmp_path / "config.json"), "--test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    run = Run(result.returncode, result.stdout, result.stderr)
    assert_fails_in_one_line(run, "Aircall refused the credentials (401")
    assert_clean(run, config, sim)


def test_a_request_that_passed_its_stop_check_when_the_stop_came_sends_no_byte(simulator, tmp_path, monkeypatch):
    sim = simulator()
    aircall = AircallClient(sim.api_url, "Basic ZGVtbzpkZW1v", stop=threading.Event())
    # Each request checks the stop first (its clock's `sleep(0)`); here every check passed just before the stop came.
    monkeypatch.setattr(RunClock, "sleep", lambda clock, seconds: None)
    stop_sending(aircall.stop)  # what a signal does
    with pytest.raises(Stopped):
        aircall.download(f"{sim.download_url}/exports/e1.csv?X-Signature=x", tmp_path / "file.csv")
    with pytest.raises(Stopped):
        aircall.get_export("e1")
    assert sim.downloads == [] and sim.api_requests == []
