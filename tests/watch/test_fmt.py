from nsa_tui.watch import fmt


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
