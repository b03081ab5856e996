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


def test_a_number_that_rounds_up_to_the_next_unit_takes_it():
    """Review revBC: a run that ended at 999,680 tokens read `tokens 1e+03k` in the dashboard's header; 999.6 tok/s
    read `1e+03`, and a loss of 999.4 `999.` with keep_zeros."""
    assert fmt.num(999_680) == "1M"
    assert fmt.num(999.6) == "1k"
    assert fmt.num(-999.7) == "-1k"
    assert fmt.num(999.6, keep_zeros=True) == "1.00k"
    assert fmt.num(999.4, keep_zeros=True) == "999"
    assert fmt.num(999.4) == "999"
    assert fmt.num(0.0099996) == "0.01"  # rounds up out of the small numbers' exponent form
    assert fmt.num(999_999_999_999_999.0) == "1000T"  # past the largest unit: its whole units
    assert fmt.num(1999) == "2k" and fmt.num(1234) == "1.23k"


def test_fewer_digits_never_give_an_exponent_below_the_first_unit():
    """With digits 1 or 2, 100-999 read `1.2e+02` (and 45 with one digit `4e+01`): whole numbers there, as past the
    largest unit."""
    assert fmt.num(123.4, 2) == "123" and fmt.num(123.4, 2, keep_zeros=True) == "123"
    assert fmt.num(45.0, 1) == "45" and fmt.num(-45.0, 1) == "-45"
    assert fmt.num(12.34, 2) == "12" and fmt.num(5.5, 1) == "6"
    assert fmt.num(960.0, 1) == "1k" and fmt.num(1234.0, 2) == "1.2k"


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


def test_a_cut_ends_after_a_word_with_an_ellipsis():
    text = "or save the data as .parquet or .jsonl files and use data.source=local"
    assert fmt.clip_words(text, 200) == text
    assert fmt.clip_words(text, 46) == "or save the data as .parquet or .jsonl files…"
    assert fmt.clip_words(text, 44) == "or save the data as .parquet or .jsonl…"  # never `files a`
    assert fmt.clip_words("/a/very/long/path/without/any/space/in/it", 10) == "/a/very/l…"


def test_an_exit_status_from_a_signal_is_said_in_words():
    assert fmt.exit_status_said(0) == "0" and fmt.exit_status_said(2) == "2" and fmt.exit_status_said(127) == "127"
    assert fmt.exit_status_said(138) == "138 (killed by signal SIGUSR1)"
    assert fmt.exit_status_said(137) == "137 (killed by signal SIGKILL)"
    assert fmt.exit_status_said(143) == "143 (stopped by signal SIGTERM)"  # the trainer's own clean stop, too
    assert fmt.exit_status_said(-10) == "-10 (killed by signal SIGUSR1)"
    assert fmt.exit_status_said(255) == "255"  # 128 + 127: no such signal
