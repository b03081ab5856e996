from nsa_tui import fmt


def test_numbers_are_short():
    assert fmt.num(0.000123) == "1.23e-4"
    assert fmt.num(1234567) == "1.23M"
    assert fmt.num(123456789.0, 2) == "123M"
    assert fmt.num(4.5678) == "4.57"
    assert fmt.num(float("nan")) == "NaN"
    assert fmt.num(None) == "—"
    assert fmt.num(1.998) == "2"
    assert fmt.num(1.998, keep_zeros=True) == "2.00"  # a loss that rounds to 2 still shows its precision
    assert fmt.num(2.0137, keep_zeros=True) == "2.01"


def test_durations():
    assert fmt.duration(59) == "59s"
    assert fmt.duration(3725) == "1h02m"
    assert fmt.duration(90061) == "1d01h"
    assert fmt.duration(None) == "—"


def test_the_report_status_and_dashboard_write_a_duration_alike():
    """Three formatters gave three answers: two days were 48h00m in the report and 2d00h in status and the
    dashboard. One formatter now; status keeps plain seconds to 120 s and hours to two days (heartbeat ages near
    its rules' thresholds), the report rounds its totals."""
    from nsa_tui.commands.status import fmt_duration
    from nsa_tui.report.markdown import _duration

    for seconds in (90.0, 3725.0, 2 * 86400 + 3600.0, 9 * 86400.0):
        assert _duration(seconds) == fmt.duration(seconds)
    assert fmt_duration(2 * 86400 + 3600) == fmt.duration(2 * 86400 + 3600) == "2d01h"
    assert (fmt_duration(90), fmt.duration(90), _duration(27.998)) == ("90s", "1m30s", "0m28s")
    assert fmt.duration(86399, hours_below=172800) == "23h59m" and fmt.duration(float("nan"), missing="-") == "-"
