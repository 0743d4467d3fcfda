"""Fixtures of the integration tests: real prs-master / prs-agent / prs processes on loopback.

Environment (ctest sets both):
  PRS_BIN_DIR     folder with prs, prs-master, prs-agent   (default /work/main/build/bin)
  PRS_SOURCE_DIR  the source tree, for examples/           (default /work/main)

Every process a fixture starts is stopped at teardown (SIGTERM, then SIGKILL after a grace
period); the teardown of an agent also checks that none of its worker processes outlive it.
Daemon output goes to files in the test's tmp_path; their tails are printed when a test fails.
"""

import os
import re
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from itest_helpers import (BIN_DIR, CLI_TIMEOUT, PYTHON, SOURCE_DIR, STOP_GRACE, Daemon,
                           make_job as _make_job, tail, wait_for, workers_under)


# --- reporting -----------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: randomized fault-injection test (slow-ish)")


# --- fixtures ------------------------------------------------------------------------------


# What AddressSanitizer, LeakSanitizer and UBSan print (UBSan: "file.cc:12:3: runtime error:").
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|\.(cc|h):\d+:\d+: runtime error:")


@pytest.fixture(scope="session")
def bins():
    b = SimpleNamespace(dir=BIN_DIR, prs=BIN_DIR / "prs", master=BIN_DIR / "prs-master",
                        agent=BIN_DIR / "prs-agent", source_dir=SOURCE_DIR, python=PYTHON)
    missing = [str(p) for p in (b.prs, b.master, b.agent) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("prs binaries missing (build first, or set PRS_BIN_DIR): " + ", ".join(missing))
    return b


@pytest.fixture
def daemons(request):
    """Registry of started daemons; all are stopped at teardown, their logs shown on failure."""
    started = []
    yield started
    failed = _failed(request)
    stuck = []
    for d in reversed(started):
        if d.alive() and not d.stop():
            stuck.append(d.name)
    if failed or stuck:
        for d in started:
            print("\n----- %s (%s) last lines of %s -----\n%s" % (
                d.name, " ".join(map(str, d.argv)), d.log_path, tail(d.log_path)))
    if stuck:
        pytest.fail("did not exit within %d s of SIGTERM (killed): %s" % (STOP_GRACE, stuck))
    # Under PRS_SANITIZE, a daemon's report fails the test that ran it.
    reports = [d.name for d in started if SANITIZER_REPORT.search(d.log())]
    if reports:
        for d in started:
            print("\n----- %s: %s -----\n%s" % (d.name, d.log_path, d.log()[-20000:]))
        pytest.fail("sanitizer reports in the logs of: %s" % reports)


def start_master(bins, daemons, tmp_path, state_dir=None, extra=(), listen="127.0.0.1:0"):
    """Starts prs-master on `listen` (port 0: a free one) and waits for its port file."""
    state_dir = Path(state_dir or tmp_path / "master-state")
    port_file = tmp_path / ("master-%d.port" % len(daemons))
    if port_file.exists():
        port_file.unlink()
    argv = [str(bins.master), "--listen", listen, "--port-file", str(port_file),
            "--state-dir", str(state_dir), "--heartbeat-interval", "0.5", "--agent-timeout", "3",
            *extra]
    d = Daemon("prs-master", argv, tmp_path / ("master-%d.log" % len(daemons)))
    daemons.append(d)

    def port_written():
        assert d.alive(), "prs-master exited with %s:\n%s" % (d.proc.returncode, d.log())
        text = port_file.read_text().strip() if port_file.exists() else ""
        return int(text) if text.isdigit() else None

    port = wait_for(port_written, 20, message="prs-master to write its port file")
    d.port = port
    d.address = "127.0.0.1:%d" % port
    d.state_dir = state_dir
    d.port_file = port_file
    return d


@pytest.fixture
def master(bins, daemons, tmp_path):
    """A running prs-master on 127.0.0.1:<random port>, state in tmp_path/master-state."""
    return start_master(bins, daemons, tmp_path)


@pytest.fixture
def restart_master(bins, daemons, master, tmp_path):
    """restart_master() -> a new prs-master on the SAME port and --state-dir as `master`.

    The old one must be dead (e.g. master.kill()). Clients (`prs`, agents) keep using
    master.address, which stays valid. Returns the new Daemon (also appended to `daemons`)."""

    def restart(extra=()):
        old = [d for d in daemons if d.name == "prs-master"][-1]
        assert not old.alive(), "restart_master: the previous prs-master is still running"
        listen = "127.0.0.1:%d" % master.port
        # The port may need a moment to be free again after the old process died.
        last = {}

        def started():
            try:
                return start_master(bins, daemons, tmp_path, state_dir=master.state_dir,
                                    extra=extra, listen=listen)
            except AssertionError as e:
                last["error"] = e
                return None
        try:
            d = wait_for(started, 30, interval=0.5, message="prs-master to restart on " + listen)
        except AssertionError as e:
            raise AssertionError("%s; last attempt: %s" % (e, last.get("error"))) from None
        assert d.port == master.port, (d.port, master.port)
        return d

    return restart


@pytest.fixture
def start_agent(bins, daemons, master, tmp_path):
    """start_agent(node_id, work_dir=None) -> a running prs-agent of the test master.

    At teardown each agent gets SIGTERM and must leave no worker process behind."""
    agents = []

    def start(node_id, work_dir=None, wait_registered=True, extra=(), env=None):
        work_dir = Path(work_dir or tmp_path / ("agent-" + node_id))
        argv = [str(bins.agent), "--master", master.address, "--work-dir", str(work_dir),
                "--node-id", node_id, *extra]
        d = Daemon("prs-agent " + node_id, argv, tmp_path / ("agent-%s.log" % node_id), env=env)
        d.node_id = node_id
        d.work_dir = work_dir
        daemons.append(d)
        agents.append(d)
        if wait_registered:
            def registered():
                assert d.alive(), "prs-agent exited with %s:\n%s" % (d.proc.returncode, d.log())
                return "registered agent=" in d.log()
            wait_for(registered, 20, message="agent %s to register" % node_id)
        return d

    yield start

    leftovers = {}
    stuck = []
    for a in agents:
        if a.alive() and not a.stop():
            stuck.append(a.name)
        try:
            wait_for(lambda: not workers_under(a.work_dir), 10,
                     message="workers of agent %s to exit" % a.node_id)
        except AssertionError:
            leftovers[a.node_id] = workers_under(a.work_dir)
            for pid in leftovers[a.node_id]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    if stuck or leftovers:
        for a in agents:
            print("\n----- %s last lines of %s -----\n%s" % (a.name, a.log_path, tail(a.log_path)))
    if stuck:
        pytest.fail("did not exit within %d s of SIGTERM (killed): %s" % (STOP_GRACE, stuck))
    if leftovers:
        pytest.fail("worker processes outlived their agent after SIGTERM: %r" % leftovers)


@pytest.fixture
def prs(bins, master):
    """prs(*args, timeout=..., env=..., cwd=...) -> CompletedProcess (text), PRS_MASTER = test master."""

    def run(*args, timeout=CLI_TIMEOUT, env=None, cwd=None):
        e = dict(os.environ)
        e["PRS_MASTER"] = master.address
        if env:
            e.update(env)
        return subprocess.run([str(bins.prs), *map(str, args)], env=e, cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    return run




@pytest.fixture
def make_job():
    """make_job(tmp_path, n_files, script_text, **keys): see itest_helpers.make_job."""
    return _make_job
