"""The simulator, driven with plain HTTP calls: the contract, its errors and its faults."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import zipfile

import pytest
import requests

from conftest import TODAY
from tap_aircall_analytics.config.catalogue import REPORTS, subtract_months

AUTH = ("demo-api-id", "demo-api-token")
PATH = "/v1/analytics/report/export"


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


TEN_DAYS_AGO, NINE_DAYS_AGO = ago(10), ago(9)


def body(report="CALLS_HISTORY", first=TEN_DAYS_AGO, last=NINE_DAYS_AGO, timezone="Europe/Paris", **extra):
    """An export request; `first` and `last` are days (or, to test refusals, any text)."""
    range_ = {"fromDate": str(first), "toDate": str(last)}
    request_filter = {"dateFilter": {"absoluteRange": range_}, "timezone": timezone}
    request_filter.update(extra.pop("filters", {}))
    return {"input": {"reportName": report, "filter": request_filter, **extra}}


def create(sim, payload=None, auth=AUTH, **kwargs):
    return requests.post(sim.api_url + PATH, json=payload or body(), auth=auth, timeout=10, **kwargs)


def wait_completed(sim, export_id, auth=AUTH):
    for _ in range(200):
        export = requests.get(f"{sim.api_url}{PATH}/{export_id}", auth=auth, timeout=10).json()
        if export["status"] != "PENDING":
            return export
        time.sleep(0.02)
    raise AssertionError("export never finished")


def export_file(sim, payload=None) -> tuple[dict, bytes]:
    response = create(sim, payload)
    assert response.status_code == 201, response.text
    export = wait_completed(sim, response.json()["exportID"])
    assert export["status"] == "COMPLETED", export
    download = requests.get(export["downloadUrl"], timeout=10)
    assert download.status_code == 200
    return export, download.content


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def test_export_flow_pending_then_completed_with_a_link_on_another_host(simulator):
    sim = simulator(export_seconds=0.3)
    response = create(sim)
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "PENDING" and created["exportID"] and created["createdAt"].endswith("Z")
    export = wait_completed(sim, created["exportID"])
    assert export["status"] == "COMPLETED" and export["isZipCompressed"] is False
    assert dt.datetime.fromisoformat(export["downloadUrlExpiresAt"].replace("Z", "+00:00")) > dt.datetime.now(
        dt.timezone.utc
    ) + dt.timedelta(minutes=59)
    assert export["downloadUrl"].startswith(sim.download_url) and sim.download_url != sim.api_url
    assert "127.0.0.1" not in export["downloadUrl"]
    content = requests.get(export["downloadUrl"], timeout=10).content
    header, *rows = rows_of(content)
    assert header[:3] == ["Call ID", "Call UUID", "Started at"] and len(rows) > 40
    assert sim.downloads[-1].had_authorization is False


def test_download_records_an_authorization_header_when_one_is_sent(simulator):
    sim = simulator()
    export = wait_completed(sim, create(sim).json()["exportID"])
    requests.get(export["downloadUrl"], auth=AUTH, timeout=10)
    assert sim.downloads[-1].had_authorization is True


@pytest.mark.parametrize(
    ("auth", "headers", "status"),
    [
        (None, {}, 401),
        (("demo-api-id", "wrong"), {}, 401),
        (None, {"Authorization": "Bearer wrong"}, 401),
        (None, {"Authorization": "Bearer demo-access-token"}, 201),
        (AUTH, {}, 201),
    ],
)
def test_credentials_basic_or_bearer(simulator, auth, headers, status):
    sim = simulator()
    response = create(sim, auth=auth, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert "Unauthorized" in response.json()["message"]


def test_account_without_analytics_plus_gets_403_saying_so(simulator):
    response = create(simulator(analytics_plus=False))
    assert response.status_code == 403
    assert "Analytics+" in response.json()["message"]


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"input": {"filter": {"dateFilter": {"relative": "TODAY"}, "timezone": "UTC"}}}, "reportName"),
        ({"input": {"reportName": "CALLS_HISTORY", "filter": {"timezone": "UTC"}}}, "dateFilter"),
        ({"input": {"reportName": "CALLS_HISTORY", "filter": {"dateFilter": {"relative": "TODAY"}}}}, "timezone"),
        (body(timezone="Mars/Olympus"), "timezone"),
        (body(report="NOT_A_REPORT"), "reportName"),
        (
            {
                "input": {
                    "reportName": "CALLS_HISTORY",
                    "filter": {
                        "dateFilter": {
                            "relative": "TODAY",
                            "absoluteRange": {"fromDate": "2026-10-01", "toDate": "2026-10-01"},
                        },
                        "timezone": "UTC",
                    },
                }
            },
            "exactly one",
        ),
        ({"input": {"reportName": "CALLS_HISTORY", "filter": {"dateFilter": {}, "timezone": "UTC"}}}, "exactly one"),
        (body(first="2026/10/01"), "fromDate"),
        (body(filters={"agentIDs": [1]}), "agentIDs"),
        (body(filters={"userIDs": 101}), "userIDs"),
        (
            {
                "input": {
                    "reportName": "CALLS_HISTORY",
                    "filter": {"dateFilter": {"relative": "SOMETIME"}, "timezone": "UTC"},
                }
            },
            "relative",
        ),
    ],
)
def test_malformed_requests_get_400_naming_the_field(simulator, payload, named):
    response = create(simulator(), payload)
    assert response.status_code == 400
    assert named in response.json()["message"]


@pytest.mark.parametrize("relative", ["TODAY", "YESTERDAY", "THIS_WEEK", "LAST_WEEK", "THIS_MONTH", "LAST_MONTH"])
def test_relative_ranges_are_accepted(simulator, relative):
    payload = {
        "input": {
            "reportName": "USER_ACTIVITY_CALLS_HANDLED",
            "filter": {"dateFilter": {"relative": relative}, "timezone": "UTC"},
        }
    }
    assert create(simulator(), payload).status_code == 201


@pytest.mark.parametrize(
    ("report", "first", "limit"),
    [
        ("CALLS_HISTORY", lambda today: subtract_months(today, 6) - dt.timedelta(days=1), "6 months"),
        ("USER_STATUS_HISTORY", lambda today: today - dt.timedelta(days=8), "7 days"),
    ],
)
def test_range_before_retention_limit_gets_422_naming_the_limit(simulator, report, first, limit):
    today = TODAY
    start = first(today)
    response = create(simulator(), body(report=report, first=start.isoformat(), last=today.isoformat(), timezone="UTC"))
    assert response.status_code == 422
    assert limit in response.json()["message"]
    at_limit = start + dt.timedelta(days=1)
    assert (
        create(
            simulator(), body(report=report, first=at_limit.isoformat(), last=today.isoformat(), timezone="UTC")
        ).status_code
        == 201
    )


def test_user_activity_has_no_retention_limit(simulator):
    payload = body(
        report="USER_ACTIVITY_CALLS_HANDLED", first="2020-01-01", last="2020-01-02", options={"dateBreakdown": "DAILY"}
    )
    assert create(simulator(), payload).status_code == 201


def test_rate_limit_headers_and_429_with_retry_after(simulator):
    sim = simulator(rate_limit=3, rate_window_seconds=2)
    responses = [create(sim) for _ in range(4)]
    assert [r.status_code for r in responses] == [201, 201, 201, 429]
    assert [r.headers["X-AircallApi-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert all(r.headers["X-AircallApi-Limit"] == "3" for r in responses)
    reset = int(responses[0].headers["X-AircallApi-Reset"])
    assert time.time() - 1 <= reset <= time.time() + 3
    assert 1 <= int(responses[3].headers["Retry-After"]) <= 2
    time.sleep(int(responses[3].headers["Retry-After"]) + 0.1)
    assert create(sim).status_code == 201


def test_every_nth_request_answers_500(simulator):
    sim = simulator(error_every=3)
    assert [create(sim).status_code for _ in range(6)] == [201, 201, 500, 201, 201, 500]


def test_unknown_export_is_404_and_forgotten_exports_too(simulator):
    sim = simulator(export_ttl_seconds=0)  # forgotten as soon as it is created
    assert requests.get(f"{sim.api_url}{PATH}/nope", auth=AUTH, timeout=10).status_code == 404
    export_id = create(sim).json()["exportID"]
    assert requests.get(f"{sim.api_url}{PATH}/{export_id}", auth=AUTH, timeout=10).status_code == 404


def test_links_expire_with_403_and_a_new_poll_mints_a_fresh_link(simulator):
    sim = simulator(link_seconds=0)  # the first link expires as it is minted
    export_id = create(sim).json()["exportID"]
    first = wait_completed(sim, export_id)
    assert requests.get(first["downloadUrl"], timeout=10).status_code == 403
    sim.config.link_seconds = 3600
    fresh = wait_completed(sim, export_id)
    assert fresh["downloadUrl"] != first["downloadUrl"]
    assert requests.get(fresh["downloadUrl"], timeout=10).status_code == 200
    tampered = fresh["downloadUrl"][:-4] + "0000"
    assert requests.get(tampered, timeout=10).status_code == 403


def test_first_export_of_each_report_fails_then_succeeds(simulator):
    sim = simulator(fail_first_export=True)
    first = wait_completed(sim, create(sim).json()["exportID"])
    assert first["status"] == "FAILED" and first["errorMessage"]
    assert wait_completed(sim, create(sim).json()["exportID"])["status"] == "COMPLETED"
    other = create(sim, body(report="USER_ACTIVITY_CALLS_HANDLED")).json()["exportID"]
    assert wait_completed(sim, other)["status"] == "FAILED"


def test_exports_over_n_days_fail_with_too_many_rows(simulator):
    sim = simulator(fail_over_days=3)
    long = wait_completed(sim, create(sim, body(first=ago(14), last=ago(11))).json()["exportID"])
    assert long["status"] == "FAILED" and "too many rows" in long["errorMessage"]
    short = wait_completed(sim, create(sim, body(first=ago(14), last=ago(12))).json()["exportID"])
    assert short["status"] == "COMPLETED"


def test_download_cut_off_half_way_once(simulator):
    sim = simulator(cut_download_once=True)
    export = wait_completed(sim, create(sim).json()["exportID"])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(export["downloadUrl"], timeout=10).content  # noqa: B018
    assert requests.get(export["downloadUrl"], timeout=10).status_code == 200


def test_zipped_files_hold_one_csv(simulator):
    sim = simulator(zipped=True)
    export, content = export_file(sim)
    assert export["isZipCompressed"] is True
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert len(archive.namelist()) == 1
    plain = export_file(simulator())[1]
    assert archive.read(archive.namelist()[0]) == plain


def test_bom_and_crlf(simulator):
    content = export_file(simulator(bom=True, crlf=True))[1]
    assert content.startswith(b"\xef\xbb\xbfCall ID,")
    assert content.count(b"\r\n") == len(rows_of(content))  # every row ends in CRLF


def test_shuffled_dropped_and_extra_columns(simulator):
    header, *rows = rows_of(
        export_file(simulator(shuffle_columns=True, drop_column="Country", extra_column="Recording URL"))[1]
    )
    contract = [column.label for column in REPORTS[0].columns]
    assert header[-1] == "Recording URL" and "Country" not in header
    assert sorted(header[:-1]) == sorted(label for label in contract if label != "Country")
    assert header[:-1] != [label for label in contract if label != "Country"]
    assert all(len(row) == len(header) for row in rows)


def test_empty_days_have_no_rows(simulator):
    sim = simulator(empty_days=frozenset({ago(10)}))
    header, *rows = rows_of(export_file(sim, body(first=ago(10), last=ago(10)))[1])
    assert header[0] == "Call ID" and rows == []
    daily = body(report="USER_ACTIVITY_CALLS_HANDLED", first=ago(10), last=ago(9), options={"dateBreakdown": "DAILY"})
    _, *rows = rows_of(export_file(sim, daily)[1])
    assert {row[0] for row in rows} == {str(ago(9))}


def test_daily_breakdown_gives_one_row_per_user_and_day(simulator):
    sim = simulator()
    daily = body(report="USER_ACTIVITY_CALLS_HANDLED", first=ago(10), last=ago(8), options={"dateBreakdown": "DAILY"})
    header, *rows = rows_of(export_file(sim, daily)[1])
    assert header[:2] == ["Date", "User ID"]
    assert len(rows) == 3 * len({row[1] for row in rows}) and {row[0] for row in rows} == {
        str(ago(10)),
        str(ago(9)),
        str(ago(8)),
    }
    header, *totals = rows_of(
        export_file(sim, body(report="USER_ACTIVITY_CALLS_HANDLED", first=ago(10), last=ago(8)))[1]
    )
    assert "Date" not in header and len(totals) == len(rows) // 3
    user = totals[0][0]
    missed = header.index("Missed calls")
    assert int(totals[0][missed]) == sum(int(row[missed + 1]) for row in rows if row[1] == user)


def test_filters_narrow_the_data(simulator):
    sim = simulator()
    _, *everything = rows_of(export_file(sim)[1])
    _, *one_user = rows_of(export_file(sim, body(filters={"userIDs": [103]}))[1])
    assert 0 < len(one_user) < len(everything) and {row[12] for row in one_user} == {"103"}
    _, *one_line = rows_of(export_file(sim, body(filters={"lineIDs": [9003]}))[1])
    assert one_line and {row[15] for row in one_line} == {"9003"}
    _, *vip = rows_of(export_file(sim, body(filters={"tagIDs": [1]}))[1])
    assert vip and all("vip" in row[20] for row in vip)
    _, *team = rows_of(export_file(sim, body(filters={"teamIDs": [2]}))[1])
    assert team and {row[14] for row in team} == {"Support"}


def test_a_day_holds_the_same_rows_whichever_range_asks(simulator):
    sim = simulator(rate_limit=10_000)
    for report in ("CALLS_HISTORY", "USER_STATUS_HISTORY", "USER_ACTIVITY_RINGING_ATTEMPTS"):
        today = TODAY
        first = today - dt.timedelta(days=5)
        _, *whole = rows_of(
            export_file(
                sim, body(report=report, first=first.isoformat(), last=(first + dt.timedelta(days=2)).isoformat())
            )[1]
        )
        parts = []
        for offset in range(3):
            day = (first + dt.timedelta(days=offset)).isoformat()
            parts += rows_of(export_file(sim, body(report=report, first=day, last=day))[1])[1:]
        assert whole == parts and whole


def test_fields_need_quoting_and_durations_pass_24_hours(simulator):
    sim = simulator(calls_per_day=1000)
    content = export_file(sim, body(first=ago(14), last=ago(12)))[1]
    header, *rows = rows_of(content)
    text = content.decode()
    assert '"Dupont, Jean"' in text or '"Sales, EMEA"' in text
    assert '"Zoë ""Zed"" Müller"' in text
    assert any("\n" in row[header.index("Line name")] for row in rows)
    hours = [int(row[header.index("Duration")].split(":")[0]) for row in rows]
    assert max(hours) >= 24
    assert {row[header.index("Answered")] for row in rows} == {"Yes", "No"}


def test_wall_clock_follows_daylight_saving_in_the_request_timezone(simulator):
    sim = simulator(calls_per_day=96)  # one call every 15 minutes
    _, utc_rows = sim.expected_rows("CALLS_HISTORY", dt.date(2026, 10, 24), dt.date(2026, 10, 26), "UTC")
    _, paris_rows = sim.expected_rows("CALLS_HISTORY", dt.date(2026, 10, 24), dt.date(2026, 10, 26), "Europe/Paris")
    utc = {row[0]: row[2] for row in utc_rows}
    paris = {row[0]: row[2] for row in paris_rows}
    offsets = set()
    for call_id in utc.keys() & paris.keys():
        delta = dt.datetime.fromisoformat(paris[call_id]) - dt.datetime.fromisoformat(utc[call_id])
        offsets.add((paris[call_id][:10], delta.total_seconds() / 3600))
    assert ("2026-10-24", 2.0) in offsets and ("2026-10-26", 1.0) in offsets
    repeated = [p for p in paris.values() if p.startswith("2026-10-25 02:")]
    assert len(repeated) == 8  # the hour 02:00-03:00 happens twice


def test_command_line_prints_its_url_and_serves_with_the_faults_asked(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_aircall_analytics.simulator",
            "--port",
            "0",
            "--zipped",
            "--export-seconds",
            "0",
            "--empty-days",
            str(ago(10)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        created = requests.post(url + PATH, json=body(first=ago(10), last=ago(10)), auth=AUTH, timeout=10)
        assert created.status_code == 201
        for _ in range(100):
            export = requests.get(f"{url}{PATH}/{created.json()['exportID']}", auth=AUTH, timeout=10).json()
            if export["status"] != "PENDING":
                break
            time.sleep(0.02)
        assert export["isZipCompressed"] is True
        archive = zipfile.ZipFile(io.BytesIO(requests.get(export["downloadUrl"], timeout=10).content))
        assert rows_of(archive.read(archive.namelist()[0]))[1:] == []  # the empty day
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_exports_including_a_failing_day_fail(simulator):
    sim = simulator(fail_days=frozenset({ago(9)}))
    failing = wait_completed(sim, create(sim, body(first=ago(10), last=ago(9))).json()["exportID"])
    assert failing["status"] == "FAILED" and "too many rows" in failing["errorMessage"]
    fine = wait_completed(sim, create(sim, body(first=ago(10), last=ago(10))).json()["exportID"])
    assert fine["status"] == "COMPLETED"


def test_first_export_is_forgotten_once_completed(simulator):
    sim = simulator(forget_first_export=True, export_seconds=0)
    first = create(sim).json()["exportID"]
    assert sim.wait_until(lambda: sim.exports_ready() == 1)
    assert requests.get(f"{sim.api_url}{PATH}/{first}", auth=AUTH, timeout=10).status_code == 404
    assert wait_completed(sim, create(sim).json()["exportID"])["status"] == "COMPLETED"


def test_first_download_of_each_export_is_refused_then_served(simulator):
    sim = simulator(refuse_first_download=True)
    export = wait_completed(sim, create(sim).json()["exportID"])
    assert requests.get(export["downloadUrl"], timeout=10).status_code == 403
    assert requests.get(export["downloadUrl"], timeout=10).status_code == 200
    assert [d.status for d in sim.downloads] == [403, 200]


def test_held_exports_stay_pending_until_released_and_failures_show_at_once(simulator):
    sim = simulator(hold_exports=True, export_seconds=0, fail_report="USER_STATUS_HISTORY")
    held = create(sim).json()["exportID"]
    failing = create(sim, body(report="USER_STATUS_HISTORY", first=ago(2), last=ago(1))).json()["exportID"]
    assert sim.wait_until(lambda: sim.exports_ready() == 2)  # both files are made: only the hold keeps one
    poll = requests.get(f"{sim.api_url}{PATH}/{held}", auth=AUTH, timeout=10).json()
    assert poll["status"] == "PENDING" and "downloadUrl" not in poll
    assert requests.get(f"{sim.api_url}{PATH}/{failing}", auth=AUTH, timeout=10).json()["status"] == "FAILED"
    sim.release_exports()
    assert requests.get(f"{sim.api_url}{PATH}/{held}", auth=AUTH, timeout=10).json()["status"] == "COMPLETED"
    sim.hold_exports()
    again = create(sim).json()["exportID"]
    assert sim.wait_until(lambda: sim.exports_ready() == 3)
    assert requests.get(f"{sim.api_url}{PATH}/{again}", auth=AUTH, timeout=10).json()["status"] == "PENDING"
