"""Fixtures for rblmux's black-box tests (see harness.py)."""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

# pytest-timeout is not packaged here: a SIGALRM per phase bounds each test.
PHASE_TIMEOUT = 60


class PhaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise PhaseTimeout(f"test phase exceeded {PHASE_TIMEOUT} s")


def _bounded(phase):
    @pytest.hookimpl(hookwrapper=True)
    def hook(item):
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(PHASE_TIMEOUT)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    hook.__name__ = f"pytest_runtest_{phase}"
    return hook


pytest_runtest_setup = _bounded("setup")
pytest_runtest_call = _bounded("call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _failed(node):
    return any(getattr(getattr(node, f"rep_{w}", None), "failed", False)
               for w in ("setup", "call"))


@pytest.fixture
def stack(tmp_path, request):
    """stack(sources, **settings) -> a started harness.Stack, stopped at teardown."""
    made = []

    def make(sources, **kw):
        s = harness.Stack(tmp_path / f"stack{len(made)}", sources, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        if _failed(request.node):
            print(s.logs())
        s.stop()


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory, request):
    """Like stack, shared by a module's tests (for read-only tests)."""
    made = []

    def make(sources, **kw):
        s = harness.Stack(tmp_path_factory.mktemp("mstack"), sources, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def standin(tmp_path):
    """standin(spec, address='127.0.0.1') -> a started harness.Standin."""
    made = []

    def make(spec, address="127.0.0.1"):
        s = harness.Standin(tmp_path / f"standin{len(made)}", spec, address=address)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def rbldnsd():
    """rbldnsd(lists) -> a started harness.Rbldnsd."""
    made = []

    def make(lists):
        r = harness.Rbldnsd(lists)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()
