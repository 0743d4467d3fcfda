"""`prs-master --http-listen`: /metrics scraped by a real Prometheus server (Debian's
`prometheus`) over HTTPS with a bearer token, while a job runs on real agents; the series are
then queried through Prometheus's HTTP API. Also: the names follow Prometheus's conventions, and
the HTTP side refuses what the gRPC API refuses (no token, the wrong role, non-GET, a huge head).
"""

import json
import re
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest

from conftest import start_master
from itest_helpers import SOURCE_DIR, Daemon, free_port, make_job, wait_for
from test_security import write_tokens

PRINCIPALS = {"alice": "submit", "scraper": "read", "agents": "agent"}

SLOW_SCRIPT = """\
import os, time

def run(mini_batch):
    time.sleep(0.2)
    return [os.path.basename(p) for p in mini_batch]
"""


@pytest.fixture
def web_cluster(bins, daemons, tmp_path):
    """A master with TLS and tokens serving gRPC and HTTPS on loopback, and one agent."""
    tls = tmp_path / "tls"
    subprocess.run([str(SOURCE_DIR / "deploy" / "make-certs.sh"), str(tls), "--master-name",
                    "127.0.0.1"], check=True, capture_output=True, timeout=60)
    tokens = write_tokens(tmp_path / "tokens", PRINCIPALS)
    http_port_file = tmp_path / "http.port"
    master = start_master(bins, daemons, tmp_path, extra=[
        "--tls-cert", str(tls / "master.pem"), "--tls-key", str(tls / "master.key"),
        "--tokens", str(tmp_path / "tokens"), "--http-listen", "127.0.0.1:0",
        "--http-port-file", str(http_port_file)])
    http_port = int(http_port_file.read_text())
    agent_token = tmp_path / "agent.token"
    agent_token.write_text(tokens["agents"] + "\n")
    agent = Daemon("prs-agent n1", [
        str(bins.agent), "--master", master.address, "--work-dir", str(tmp_path / "agent-n1"),
        "--node-id", "n1", "--tls-ca", str(tls / "ca.pem"), "--token-file", str(agent_token)],
        tmp_path / "agent-n1.log")
    daemons.append(agent)
    wait_for(lambda: "registered agent=" in agent.log(), 20, message="the agent to register")
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    return SimpleNamespace(master=master, tls=tls, tokens=tokens, context=context,
                           url="https://127.0.0.1:%d" % http_port, http_port=http_port,
                           ca=tls / "ca.pem")


def get(c, path, token=None, method="GET"):
    """(status, body text) of an HTTPS request to the master's window."""
    request = urllib.request.Request(c.url + path, method=method)
    if token:
        request.add_header("Authorization", "Bearer " + c.tokens.get(token, token))
    try:
        with urllib.request.urlopen(request, context=c.context, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def prometheus(tmp_path, web_cluster):
    """A Prometheus server scraping the master's /metrics every second with the reader's
    token; returns query(expr) -> the result vector of its HTTP API."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: scripts/setup.sh --tests installs it")
    c = web_cluster
    token_file = tmp_path / "scraper.token"
    token_file.write_text(c.tokens["scraper"] + "\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "prs-master", "scheme": "https",
            "static_configs": [{"targets": ["127.0.0.1:%d" % c.http_port]}],
            "tls_config": {"ca_file": str(c.ca)},
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
        }],
    }))
    port = free_port()
    d = Daemon("prometheus", [
        "prometheus", "--config.file", str(config), "--storage.tsdb.path", str(tmp_path / "tsdb"),
        "--web.listen-address", "127.0.0.1:%d" % port], tmp_path / "prometheus.log")
    api = "http://127.0.0.1:%d" % port

    def ready():
        assert d.alive(), "prometheus exited:\n" + d.log()
        try:
            with urllib.request.urlopen(api + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(ready, 60, interval=0.25, message="prometheus to be ready")

    def query(expr):
        url = api + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    yield SimpleNamespace(query=query, daemon=d)
    d.stop()


def value(result):
    """The single sample's value of a query result, or None when there is none."""
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_a_running_job(web_cluster, prometheus, bins, tmp_path):
    c = web_cluster
    wait_for(lambda: value(prometheus.query('up{job="prs-master"}')) == 1, 30,
             message="prometheus to scrape the master (up == 1)")
    job = make_job(tmp_path, 40, SLOW_SCRIPT, name="scraped-job", mini_batch_size=2,
                   process_count_per_node=2)
    env = {"PRS_MASTER": c.master.address, "PRS_TLS_CA": str(c.ca),
           "PRS_TOKEN": c.tokens["alice"], "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(bins.prs), "submit", str(job.job_file)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    # While it runs, a scrape sees it RUNNING with mini-batches leased.
    wait_for(lambda: value(prometheus.query(
        'prs_job_info{job_id="%s",state="RUNNING"}' % job_id)) == 1, 30,
        message="a scrape of the job RUNNING")
    wait_for(lambda: value(prometheus.query(
        'prs_job_items_succeeded_total{job_id="%s"}' % job_id)) == 40, 60,
        message="the job's 40 items in Prometheus")
    q = prometheus.query
    assert value(q('prs_job_rows_written_total{job_id="%s"}' % job_id)) == 40
    assert value(q('prs_job_mini_batches_created_total{job_id="%s"}' % job_id)) == 20
    assert value(q('prs_job_items_failed{job_id="%s"}' % job_id)) == 0
    wait_for(lambda: value(q('prs_jobs{state="SUCCEEDED"}')) == 1, 30,
             message="prs_jobs{state=SUCCEEDED} == 1")
    assert value(q('prs_job_mini_batches{job_id="%s",state="succeeded"}' % job_id)) == 20
    assert value(q('max_over_time(prs_node_workers_busy{node="n1"}[5m])')) >= 1
    assert value(q('max_over_time(prs_job_mini_batches{job_id="%s",state="running"}[5m])'
                   % job_id)) >= 1
    assert value(q("prs_agents_connected")) == 1
    assert value(q("prs_agents_registered_total")) == 1
    assert value(q("prs_mini_batches_dispatched_total")) >= 20
    assert value(q("prs_mini_batches_committed_total")) == 20
    assert value(q("increase(prs_mini_batches_committed_total[5m])")) > 0
    assert value(q("prs_mini_batch_pull_to_report_seconds_count")) == 20
    assert value(q("histogram_quantile(0.5, prs_mini_batch_pull_to_report_seconds_bucket)")) > 0.1
    assert value(q("prs_commit_duration_seconds_count")) >= 1
    assert value(q('prs_grpc_requests_total{method="prs.v1.JobService/SubmitJob",code="OK"}')) == 1
    assert value(q('prs_grpc_requests_total{method="prs.v1.AgentService/PullTasks",code="OK"}')) > 0
    assert value(q("process_resident_memory_bytes")) > 1e6
    assert value(q("process_cpu_seconds_total")) > 0


def test_metric_names_follow_the_conventions_and_access_is_the_apis(web_cluster, bins, tmp_path):
    c = web_cluster
    job = make_job(tmp_path, 4, SLOW_SCRIPT, name="named-job")
    env = {"PRS_MASTER": c.master.address, "PRS_TLS_CA": str(c.ca),
           "PRS_TOKEN": c.tokens["alice"], "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(bins.prs), "submit", str(job.job_file), "--wait"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    status, text = get(c, "/metrics", "scraper")
    assert status == 200
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in families, "family %s declared twice" % name
            families[name] = kind
        elif line and not line.startswith("#"):
            m = re.match(r"^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
            assert m, "not a sample line: %r" % line
            labels = re.findall(r'([a-z_]+)="', m.group(2) or "")
            # "job" and "instance" are Prometheus's own target labels.
            assert not {"job", "instance"} & set(labels), line
    for name, kind in families.items():
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
        assert name.startswith(("prs_", "process_")), name
    for name in ("prs_jobs", "prs_job_mini_batches", "prs_job_items_succeeded_total",
                 "prs_job_rows_written_total", "prs_agents_connected", "prs_agents_lost_total",
                 "prs_node_workers_busy", "prs_mini_batches_dispatched_total",
                 "prs_mini_batches_committed_total", "prs_mini_batch_pull_to_report_seconds",
                 "prs_commit_duration_seconds", "prs_grpc_requests_total",
                 "process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert name in families or name in text, name
    assert families["prs_commit_duration_seconds"] == "histogram"

    # The API's rules: a token, and the role ListAgents needs (read or admin).
    assert get(c, "/metrics")[0] == 401
    assert get(c, "/metrics", "0" * 64)[0] == 401
    status, body = get(c, "/metrics", "alice")
    assert status == 403 and "needs the role read or admin" in body
    assert get(c, "/metrics", "agents")[0] == 403
    assert get(c, "/metrics", "scraper", method="POST")[0] == 405
    assert get(c, "/healthz") == (200, "ok\n")
    # A request head over 16 KiB is refused, and the server serves on.
    with socket.create_connection(("127.0.0.1", c.http_port), timeout=10) as raw:
        with c.context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * (64 << 10) + b"\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 431 ")
    assert get(c, "/metrics", "scraper")[0] == 200


def test_the_http_port_given_as_the_grpc_one_is_named(web_cluster, bins):
    """An easy mistake, said as such (the wrong CA is test_security's)."""
    c = web_cluster
    r = subprocess.run([str(bins.prs), "list"], capture_output=True, text=True, timeout=60,
                       env={"PRS_TOKEN": c.tokens["scraper"], "PATH": "/usr/bin:/bin",
                            "PRS_MASTER": "127.0.0.1:%d" % c.http_port, "PRS_TLS_CA": str(c.ca)})
    assert r.returncode == 3 and "is it the master's --http-listen port?" in r.stderr, r.stderr


def test_a_master_reachable_from_other_hosts_needs_tls_and_tokens_for_http_too(bins, tmp_path):
    r = subprocess.run([str(bins.master), "--listen", "127.0.0.1:0", "--http-listen",
                        "0.0.0.0:0", "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "--http-listen" in r.stderr and "TLS" in r.stderr and "--tokens" in r.stderr, r.stderr
