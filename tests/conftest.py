"""Shared fixtures. Markers ``internet`` and ``slow`` are off unless --internet / --slow is given."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_addoption(parser):
    parser.addoption("--internet", action="store_true", help="run tests that query live web services")
    parser.addoption("--slow", action="store_true", help="run slow end-to-end tests")


def pytest_collection_modifyitems(config, items):
    for marker in ("internet", "slow"):
        if config.getoption(f"--{marker}"):
            continue
        skip = pytest.mark.skip(reason=f"needs --{marker}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def shared(*parts):
    """Path to a file of ../shared/data, or skip the test when that folder is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


@pytest.fixture
def fixtures():
    return FIXTURES
