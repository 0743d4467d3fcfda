"""The dashboard (`prs-master --http-listen`, master/web/) in a real browser: headless Chromium
driven by Selenium (Debian's chromium, chromium-driver and python3-selenium) against a master with
tokens and a real agent. A running job's progress moves and reaches SUCCEEDED, its workers, charts,
attempts and log files show; a failed job shows its first error and traceback; the page asks for a
token and shows a submitter only their own jobs.

PRS_UPDATE_SCREENSHOT=1 also writes the screenshot of a job in progress to docs/dashboard.png.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import start_master
from itest_helpers import SOURCE_DIR, Daemon, make_job, wait_for
from test_security import write_tokens

PRINCIPALS = {"alice": "submit", "bob": "submit", "viewer": "read", "agents": "agent"}

SLOW_SCRIPT = """\
import os, time

def run(mini_batch):
    time.sleep(0.25)
    return [os.path.basename(p) for p in mini_batch]
"""

FAILING_SCRIPT = """\
def run(mini_batch):
    raise ValueError("this model cannot score " + str(len(mini_batch)) + " files")
"""


@pytest.fixture
def site(bins, daemons, tmp_path):
    """A loopback master with tokens and an HTTP window, one agent, and submit(job, who)."""
    tokens = write_tokens(tmp_path / "tokens", PRINCIPALS)
    http_port_file = tmp_path / "http.port"
    master = start_master(bins, daemons, tmp_path, extra=[
        "--tokens", str(tmp_path / "tokens"), "--http-listen", "127.0.0.1:0",
        "--http-port-file", str(http_port_file)])
    agent_token = tmp_path / "agent.token"
    agent_token.write_text(tokens["agents"] + "\n")
    agent = Daemon("prs-agent n1", [
        str(bins.agent), "--master", master.address, "--work-dir", str(tmp_path / "agent-n1"),
        "--node-id", "n1", "--token-file", str(agent_token)], tmp_path / "agent-n1.log")
    daemons.append(agent)
    wait_for(lambda: "registered agent=" in agent.log(), 20, message="the agent to register")

    def submit(job, who="alice"):
        r = subprocess.run([str(bins.prs), "submit", str(job.job_file)], capture_output=True,
                           text=True, timeout=60,
                           env={"PRS_MASTER": master.address, "PRS_TOKEN": tokens[who],
                                "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    return type("Site", (), {"url": "http://127.0.0.1:%s/" % http_port_file.read_text().strip(),
                             "tokens": tokens, "submit": staticmethod(submit)})


@pytest.fixture
def browser(tmp_path):
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            pytest.fail("%s is missing: scripts/setup.sh --tests installs chromium and "
                        "chromium-driver" % tool)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100", "--user-data-dir=%s" % (tmp_path / "chromium")):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    # The page's own errors fail the test: a script error, a missing file. A refused request
    # (401: no token yet, 403: not the caller's) is shown in the page, as the tests check.
    logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and not (
        e["source"] == "network" and ("status of 401" in e["message"] or
                                      "status of 403" in e["message"]))]
    driver.quit()
    assert not logs, logs


def js(driver, script):
    return driver.execute_script(script)


def text_of(driver, element_id):
    return js(driver, "const e = document.getElementById(%r); return e ? e.textContent : null;"
              % element_id)


def test_a_running_job_moves_to_succeeded_with_its_workers_charts_and_logs(site, browser,
                                                                         tmp_path):
    browser.get(site.url + "#token=" + site.tokens["viewer"])
    wait_for(lambda: js(browser, "return !document.getElementById('overview').hidden"), 20,
             message="the overview to show")
    job = make_job(tmp_path, 48, SLOW_SCRIPT, name="dash-job", mini_batch_size=2,
                   process_count_per_node=2, resource_monitor_interval=1)
    job_id = site.submit(job)
    row = "document.querySelector('tr[data-job=\"%s\"]')" % job_id
    seen = []

    def progressed():
        state = js(browser, "const r = %s; return r ? r.dataset.state : null;" % row)
        width = js(browser, "const r = %s; return r ? r.querySelector('.progress > div')"
                            ".style.width : null;" % row)
        if width is not None and (not seen or seen[-1] != width):
            seen.append(width)
        return state == "SUCCEEDED"

    wait_for(progressed, 90, interval=0.1, message="the job's row to reach SUCCEEDED")
    values = [float(w.rstrip("%")) for w in seen]
    partial = [v for v in values if 0 < v < 100]
    assert values[-1] == 100 and len(partial) >= 2, seen  # it moved, in steps, to the end
    assert values == sorted(values), seen
    items = js(browser, "return %s.querySelector('.items').textContent" % row)
    assert items == "48 / 48"
    # The nodes table (the viewer may read it) shows the agent.
    assert js(browser, "return document.querySelector('tr[data-node=\"n1\"]') !== null")

    # A second job, watched on its own page while it runs.
    job2 = make_job(tmp_path, 96, SLOW_SCRIPT, job_dir_name="job2", name="dash-job",
                    mini_batch_size=2, process_count_per_node=2, resource_monitor_interval=1)
    job2_id = site.submit(job2)
    browser.get(site.url + "#/job/" + job2_id)
    wait_for(lambda: js(browser, "return document.querySelectorAll('#workers tbody tr').length")
             >= 1, 60, interval=0.1, message="the workers of the running job")
    workers = js(browser, "return [...document.querySelectorAll('#workers tbody tr')]"
                          ".map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent)")
    assert all(w.startswith("n1 ") for w in workers), workers
    assert text_of(browser, "job-state") == "RUNNING"
    wait_for(lambda: js(browser, "return document.querySelectorAll('#charts svg').length") >= 2,
             30, message="the CPU and memory charts")
    wait_for(lambda: js(browser, "return document.querySelectorAll('#attempts tbody tr').length")
             >= 2, 30, message="the attempts table")
    assert text_of(browser, "job-state") == "RUNNING"  # the screenshot is of a job in progress
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10000
    if os.environ.get("PRS_UPDATE_SCREENSHOT"):
        shutil.copy(shot, SOURCE_DIR / "docs" / "dashboard.png")
    wait_for(lambda: text_of(browser, "job-state") == "SUCCEEDED", 90,
             message="the job page to show SUCCEEDED")
    wait_for(lambda: js(browser, "return parseFloat(document.getElementById('job-bar')"
                                 ".style.width)") == 100, 10, message="a full bar")
    summary = text_of(browser, "job-summary")
    assert "96 of 96" in summary and str(job2.output_file) in summary
    assert js(browser, "return document.querySelectorAll('#workers tbody tr').length") == 0
    wait_for(lambda: js(browser, "return document.querySelectorAll('#attempts tbody tr')"
                                 ".length") == 48, 10, message="the 48 attempts")
    attempts = js(browser, "return [...document.querySelectorAll('#attempts tbody tr')]"
                           ".map(r => r.dataset.status)")
    assert set(attempts) == {"RUN_DONE"}, attempts
    # Each log file has a link; the overview opens in the viewer.
    links = js(browser, "return [...document.querySelectorAll('#logs a')].map(a => a.textContent)")
    assert "job_progress_overview.txt" in links and "job_result.txt" in links
    browser.find_element("link text", "job_progress_overview.txt").click()
    wait_for(lambda: "State: SUCCEEDED" in (text_of(browser, "viewer-text") or ""), 20,
             message="the log viewer to show the overview")
    # Any file name survives the address: each part of the path is encoded on its own.
    assert js(browser, "return route(logHref('x-1', 'user/stdout/n1/a 100%#?.txt'))") == \
        {"job": "x-1", "log": "user/stdout/n1/a 100%#?.txt"}
    assert js(browser, "return route('#/job/x-1/log/bad%zz')") == {"job": "x-1", "log": "bad%zz"}


def test_a_failed_job_shows_its_first_error_and_traceback(site, browser, tmp_path):
    job = make_job(tmp_path, 6, FAILING_SCRIPT, name="broken-job", mini_batch_size=3,
                   run_max_try=1, error_threshold=0)
    job_id = site.submit(job, "bob")
    browser.get(site.url + "#token=" + site.tokens["bob"])
    browser.get(site.url + "#/job/" + job_id)
    wait_for(lambda: text_of(browser, "job-state") == "FAILED", 60,
             message="the job page to show FAILED")
    wait_for(lambda: "Traceback" in (text_of(browser, "traceback") or ""), 20,
             message="the first traceback")
    assert "ValueError: this model cannot score 3 files" in text_of(browser, "first-error")
    assert "ValueError: this model cannot score 3 files" in text_of(browser, "traceback")
    assert text_of(browser, "first-error-link").startswith("user/error/n1/process")
    assert "RUN_EXCEPTION" in text_of(browser, "attempts")
    # The Error column is the CSV's field, unquoted: the message as the script raised it.
    errors = js(browser, "const t = document.getElementById('attempts'); "
                         "const i = [...t.tHead.rows[0].cells].findIndex(c => c.textContent == "
                         "'Error'); return [...t.tBodies[0].rows].map(r => r.cells[i].textContent)")
    assert errors and all(e.startswith("ValueError: this model cannot score 3 files")
                          for e in errors), errors
    # The state with the master's reason, and the failed items counted.
    summary = text_of(browser, "job-summary")
    assert re.search(r"StateFAILED: \S", summary), summary
    assert re.search(r"Items\d+ of \d+, [1-6] failed", summary), summary


def test_the_page_asks_for_a_token_and_shows_a_submitter_only_theirs(site, browser, tmp_path):
    alices = site.submit(make_job(tmp_path, 2, SLOW_SCRIPT, job_dir_name="a", name="alices"))
    bobs = site.submit(make_job(tmp_path, 2, SLOW_SCRIPT, job_dir_name="b", name="bobs"), "bob")
    browser.get(site.url)
    wait_for(lambda: js(browser, "return !document.getElementById('login').hidden"), 20,
             message="the token form")
    assert js(browser, "return document.getElementById('overview').hidden")
    browser.find_element("id", "token").send_keys("0" * 64)
    browser.find_element("css selector", "#login button").click()
    wait_for(lambda: "refused this token" in text_of(browser, "login-reason"), 20,
             message="the refusal of a wrong token")
    browser.find_element("id", "token").send_keys(site.tokens["alice"])
    browser.find_element("css selector", "#login button").click()
    wait_for(lambda: js(browser, "return document.querySelectorAll('#jobs tbody tr').length")
             == 1, 20, message="alice's job only")
    assert js(browser, "return document.querySelector('#jobs tbody tr').dataset.job") == alices
    # ListAgents needs read or admin: the nodes are not a submitter's to see.
    assert js(browser, "return document.getElementById('nodes-section').hidden")
    browser.get(site.url + "#/job/" + bobs)
    wait_for(lambda: "belongs to 'bob'" in (text_of(browser, "error") or ""), 20,
             message="bob's job refused to alice")
