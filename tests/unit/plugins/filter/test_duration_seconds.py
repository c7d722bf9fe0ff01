"""Unit tests of the selfhost.platform.duration_seconds filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.platform.plugins.filter.duration_seconds import FilterModule, duration_seconds


def test_registered():
    assert FilterModule().filters()["duration_seconds"] is duration_seconds


@pytest.mark.parametrize("value, seconds", [
    ("744h", 744 * 3600),
    ("31d", 31 * 86400),
    ("2w", 14 * 86400),
    ("1y", 365 * 86400),
    ("1h30m", 5400),
    ("1d12h", 129600),
    ("90s", 90),
    ("0s", 0),
    ("1500ms", 1.5),
    ("2000ms", 2),
])
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "0", "24", "h", "1.5h", "30m1h", "1h1h", "-1h", " 1h", "1H", None, 24, ["1h"]])
def test_not_a_duration_gives_the_default(value):
    assert duration_seconds(value) == -1
    assert duration_seconds(value, default=None) is None
