"""dfer.formatting: the one way numbers and sizes are written and read."""

import math

import pytest

from dfer.formatting import human_bytes, parse_bytes, percent


def test_percent_reads_as_points():
    assert percent(0.8274) == "82.74" and percent(0.5, 1, suffix="%") == "50.0%"
    assert percent(-0.0213, signed=True) == "-2.13" and percent(0.01, 1, signed=True) == "+1.0"


def test_a_missing_percentage_is_never_zero():
    assert percent(None) == percent(math.nan) == "n/a"


@pytest.mark.parametrize("text, value", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5GB", 3 << 29), ("800000", 800000),
                                         ("2gib", 2 << 30)])
def test_sizes_are_read_as_people_write_them(text, value):
    assert parse_bytes(text) == value


def test_a_size_that_is_not_one_is_named_in_the_error():
    with pytest.raises(ValueError, match="not a size: 'lots'"):
        parse_bytes("lots")


def test_sizes_are_written_in_the_largest_unit_under_1024():
    assert (human_bytes(512), human_bytes(2048), human_bytes(5 << 20), human_bytes(3 << 30)) == \
        ("512 B", "2.0 KB", "5.0 MB", "3.0 GB")
