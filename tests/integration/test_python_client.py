"""prs.client, the Python SDK, against a real prs-master and agents.

Each scenario runs as its own /usr/bin/python3 process with the source tree's python/ and the
build's generated stubs (<build>/python) on PYTHONPATH, as a user's script would import them.
The scenario prints one JSON object as its last line; the test asserts on it and on the files.
"""

import json
import os
import socket
import subprocess
import textwrap

from itest_helpers import BIN_DIR, SOURCE_DIR, make_job
from test_security import cluster, submit_as  # noqa: F401 (the TLS and tokens master)

ROWS_SCRIPT = """\
import os

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""

# Fails on every input whose number ends in 3 (one try), rows for the others.
FAILING_SCRIPT = """\
import os

def run(mini_batch):
    for p in mini_batch:
        if os.path.basename(p).endswith("3.txt"):
            raise ValueError("cannot score " + os.path.basename(p))
    return [os.path.basename(p) for p in mini_batch]
"""

SLOW_SCRIPT = """\
import os, time

def run(mini_batch):
    time.sleep(0.5)
    return [os.path.basename(p) for p in mini_batch]
"""


def client_env(master_address=None, **extra):
    env = dict(os.environ)
    for k in ("PRS_TOKEN", "PRS_TOKEN_FILE", "PRS_TLS_CA", "PRS_TLS_CERT", "PRS_TLS_KEY"):
        env.pop(k, None)
    env["PYTHONPATH"] = "%s:%s" % (SOURCE_DIR / "python", BIN_DIR.parent / "python")
    if master_address:
        env["PRS_MASTER"] = master_address
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_client(code, env, cwd=None, timeout=120):
    """Runs `code` (prs.client imported as in a user's script) and returns its last stdout line,
    parsed as JSON."""
    prelude = "import json\nfrom prs.client import *\n"
    r = subprocess.run(["/usr/bin/python3", "-c", prelude + textwrap.dedent(code)], env=env,
                       cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "client script failed (%d):\n%s\n%s" % (r.returncode, r.stdout,
                                                                      r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def output_rows(job):
    return job.output_file.read_text().split()


def test_submit_in_five_lines_then_get_list_nodes_and_logs(master, start_agent, tmp_path):
    start_agent("n1")
    start_agent("n2")
    job = make_job(tmp_path, 40, ROWS_SCRIPT, name="sdk-job")
    out = run_client("""
        client = Client()
        submitted = client.submit(%r, overrides={"mini_batch_size": 7})
        status = client.wait(submitted.job_id, timeout=90)
        files = client.logs.list(submitted.job_id)
        overview = client.logs.read(submitted.job_id, "job_progress_overview.txt").decode()
        print(json.dumps({
            "submitted": submitted.job_id, "log_dir": submitted.log_dir,
            "state": status.state, "done": status.done, "succeeded": status.succeeded,
            "counts": status.counts.__dict__, "output_file": status.output_file,
            "rate": status.items_per_second,
            "owner": status.owner, "get": client.get(submitted.job_id).state,
            "listed": [j.job_id for j in client.list()],
            "nodes": sorted(n.node_id for n in client.nodes()),
            "files": [f.path for f in files], "sizes": [f.size for f in files],
            "overview": overview,
            "head": client.logs.read(submitted.job_id, "job_progress_overview.txt",
                                     max_bytes=10).decode(),
            "first_error": client.first_error(submitted.job_id)}))
    """ % str(job.job_file), client_env(master.address))
    assert out["state"] == "SUCCEEDED" and out["done"] and out["succeeded"]
    # Over the run, even for a job shorter than the rate's one-minute window.
    assert out["rate"] > 0
    assert out["get"] == "SUCCEEDED" and out["listed"] == [out["submitted"]]
    assert out["counts"]["items_succeeded"] == 40 and out["counts"]["items_failed"] == 0
    # mini_batch_size 7 from the overrides: 40 files in 6 mini-batches.
    assert out["counts"]["mini_batches_created"] == 6
    assert out["output_file"] == str(job.output_file) and out["owner"] == "local"
    assert sorted(output_rows(job)) == sorted(p.name for p in job.inputs)  # each once
    assert out["nodes"] == ["n1", "n2"]
    assert "job_progress_overview.txt" in out["files"] and "job_result.txt" in out["files"]
    assert "State: SUCCEEDED" in out["overview"]
    assert out["head"] == out["overview"][:10]
    assert out["first_error"] is None
    assert out["log_dir"].startswith(str(master.state_dir))


def test_a_dict_job_resolves_against_the_current_folder_and_is_checked_as_the_cli_does(
        master, prs, start_agent, tmp_path):
    start_agent("n1")
    job = make_job(tmp_path, 12, ROWS_SCRIPT, name="dict-job")
    spec = dict(job.spec, mini_batch_size=5)  # relative paths: ./src, ./data, ./out
    bad_key = dict(spec, mini_batch_sise=3)
    no_script = dict(spec, entry_script="missing.py")
    out = run_client("""
        client = Client()
        errors = {}
        for name, bad in (("key", %r), ("script", %r)):
            try:
                client.submit(bad)
            except InvalidJobError as e:
                errors[name] = [e.code, e.message]
        try:
            client.submit(%r, overrides=["inputs.0.path=./nowhere"])
        except PrsError as e:
            errors["override"] = [type(e).__name__, e.message]
        submitted = client.submit(%r)
        status = client.wait(submitted.job_id, timeout=90)
        print(json.dumps({"errors": errors, "state": status.state,
                          "output": status.output_file}))
    """ % (bad_key, no_script, spec, spec), client_env(master.address), cwd=job.root)
    assert out["state"] == "SUCCEEDED" and out["output"] == str(job.output_file)
    assert sorted(output_rows(job)) == sorted(p.name for p in job.inputs)
    # The very words of `prs submit`: one implementation of the checks.
    for name, bad in (("key", bad_key), ("script", no_script)):
        path = job.root / ("%s.yaml" % name)  # the same folder, so the same paths
        path.write_text(json.dumps(bad))
        r = prs("submit", path, cwd=job.root)
        assert r.returncode == 2, r.stderr
        code, message = out["errors"][name]
        assert code == "INVALID_ARGUMENT"
        assert r.stderr.strip() == "prs: error: " + message
    assert "mini_batch_sise" in out["errors"]["key"][1]
    assert "missing.py" in out["errors"]["script"][1]
    assert out["errors"]["override"][0] == "InvalidJobError"
    assert "nowhere" in out["errors"]["override"][1]


def test_the_example_follows_a_failing_job_and_shows_its_first_error(master, start_agent,
                                                                     tmp_path):
    start_agent("n1")
    job = make_job(tmp_path, 30, FAILING_SCRIPT, name="failing-job", mini_batch_size=1,
                   run_max_try=1, error_threshold=-1)
    r = subprocess.run(["/usr/bin/python3", str(SOURCE_DIR / "examples" / "python-client" /
                                                "follow_job.py"), str(job.job_file)],
                       env=client_env(master.address), capture_output=True, text=True,
                       timeout=120)
    # error_threshold -1: the job succeeds with its failed items counted.
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("submitted failing-job-1; logs in ")
    assert any(line.startswith("SUCCEEDED: 30/30 items, 3 failed") for line in lines), r.stdout
    assert "first error: " in r.stdout and "cannot score" in r.stdout, r.stdout
    # The traceback file of the log tree, read through the API: its first record only.
    assert "--- user/error/n1/" in r.stdout and "ValueError: cannot score" in r.stdout
    assert r.stdout.count("Traceback (most recent call last)") == 1, r.stdout
    out = run_client("""
        client = Client()
        errors = {}
        for name, fn in (("missing_file", lambda: client.logs.read("failing-job-1", "nope.txt")),
                         ("follow_missing", lambda: list(client.logs.follow("failing-job-1",
                                                                            "nope.txt"))),
                         ("missing_job", lambda: client.logs.read("nope-1", "x.txt"))):
            try:
                fn()
            except PrsError as e:
                errors[name] = [type(e).__name__, e.message]
        chunks = list(client.logs.follow("failing-job-1", "user/error.txt"))
        print(json.dumps({"errors": errors, "followed": b"".join(chunks).decode()}))
    """, client_env(master.address))
    assert out["errors"]["missing_file"][0] == "LogFileNotFoundError"
    assert out["errors"]["follow_missing"][0] == "LogFileNotFoundError"
    assert "ended without writing nope.txt" in out["errors"]["follow_missing"][1]
    assert out["errors"]["missing_job"][0] == "JobNotFoundError"
    assert "cannot score" in out["followed"]
    assert sorted(output_rows(job)) == sorted(p.name for p in job.inputs
                                              if not p.name.endswith("3.txt"))


def test_cancel_resume_watch_and_wait_timeout(master, start_agent, tmp_path):
    start_agent("n1")
    job = make_job(tmp_path, 16, SLOW_SCRIPT, name="slow-job", mini_batch_size=1)
    out = run_client("""
        client = Client()
        submitted = client.submit(%r)
        try:
            client.wait(submitted.job_id, timeout=0.5)
            timed_out = None
        except WaitTimeoutError as e:
            timed_out = [e.code, e.status.state, isinstance(e, TimeoutError)]
        seen = []
        for status in client.watch(submitted.job_id):
            seen.append(status.state)
            if status.counts.items_succeeded >= 2:
                break
        cancelled = client.cancel(submitted.job_id)  # waits for the end, as prs cancel
        try:
            client.cancel(submitted.job_id)
            again = None
        except PrsError as e:
            again = [type(e).__name__, e.code]
        resumed = client.resume(submitted.job_id)
        final = client.wait(submitted.job_id, timeout=90)
        try:
            client.resume("no-such-job")
        except JobNotFoundError as e:
            missing = e.message
        print(json.dumps({"timed_out": timed_out, "seen": seen, "cancelled": cancelled.state,
                          "cancel_again": again, "resumed": resumed.state, "final": final.state,
                          "items": final.counts.items_succeeded, "missing": missing}))
    """ % str(job.job_file), client_env(master.address))
    assert out["timed_out"] == ["DEADLINE_EXCEEDED", out["timed_out"][1], True]
    assert out["timed_out"][1] in ("QUEUED", "RUNNING")
    assert out["seen"][-1] == "RUNNING"
    assert out["cancelled"] == "CANCELLED"
    assert out["resumed"] in ("QUEUED", "RUNNING") and out["final"] == "SUCCEEDED"
    assert "no-such-job" in out["missing"]
    # Cancelled, then resumed: every input in the output exactly once.
    assert sorted(output_rows(job)) == sorted(p.name for p in job.inputs)


def test_mistakes_of_the_caller_are_clear_errors_not_crashes(bins, tmp_path):
    job = make_job(tmp_path, 2, ROWS_SCRIPT, name="local-checks")
    (job.root / "-dash.yaml").write_text(job.job_file.read_text())
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    silent = socket.socket()  # accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    out = run_client("""
        import os, pathlib, time
        from prs.v1 import job_pb2
        results = {}
        def attempt(name, fn):
            try:
                fn()
                results[name] = "ok"
            except PrsError as e:
                results[name] = [type(e).__name__, e.code, e.message]
        attempt("cert_without_key", lambda: Client(tls=Tls(%(cert)r, cert=%(cert)r)))
        os.environ["PRS_TLS_CERT"] = %(cert)r
        attempt("env_cert_without_ca", lambda: Client())
        del os.environ["PRS_TLS_CERT"]
        attempt("missing_file", lambda: Client().prepare(%(root)r + "/nope.yaml"))
        client = Client("127.0.0.1:%(silent)d")
        request = client.prepare(%(job)r, overrides={
            "output": pathlib.Path(%(root)r) / "elsewhere",
            "environment.variables.GREETING": "h\u00e9llo \U0001F600: [not, a, list]"})
        results["path_override"] = request.spec.output
        results["unicode_override"] = request.spec.environment.variables["GREETING"]
        spec = dict(%(spec)r, name="emoji-\U0001F600")
        attempt("unicode_name", lambda: client.prepare(spec))
        results["dash_path"] = client.prepare(%(root)r + "/-dash.yaml").spec.name
        start = time.monotonic()
        try:
            client.wait("x", timeout=1)
        except WaitTimeoutError as e:
            results["wait"] = [e.status, round(time.monotonic() - start)]
        job = Job("j", "n", "QUEUED", JobCounts())
        results["hashable"] = hash(job) == hash(Job("j", "n", "QUEUED", JobCounts()))
        print(json.dumps(results))
    """ % {"cert": str(cert), "root": str(job.root), "job": str(job.job_file),
           "silent": silent.getsockname()[1], "spec": job.spec},
        client_env(), cwd=job.root)
    silent.close()
    assert out["cert_without_key"][:2] == ["ConfigurationError", "INVALID_ARGUMENT"]
    assert "both cert and key" in out["cert_without_key"][2]
    assert out["env_cert_without_ca"][0] == "ConfigurationError"
    assert "$PRS_TLS_CA" in out["env_cert_without_ca"][2]
    assert out["missing_file"][:2] == ["InvalidJobError", "NOT_FOUND"]
    assert "nope.yaml' does not exist" in out["missing_file"][2]
    assert out["path_override"] == str(job.root / "elsewhere")
    assert out["unicode_override"] == "h\u00e9llo \U0001F600: [not, a, list]"
    # A name is a DNS label: refused by the same check as the CLI's, not by the encoding.
    assert out["unicode_name"][0] == "InvalidJobError" and "name" in out["unicode_name"][2]
    assert out["dash_path"] == "local-checks"
    assert out["wait"] == [None, 1]
    assert out["hashable"] is True


def test_an_unreachable_master_names_the_fix(bins, tmp_path):
    out = run_client("""
        try:
            Client("127.0.0.1:1").get("x")
        except MasterUnavailableError as e:
            print(json.dumps({"code": e.code, "message": e.message}))
    """, client_env())
    assert out["code"] == "UNAVAILABLE"
    assert "cannot reach prs-master at 127.0.0.1:1" in out["message"]
    assert "prs-master --listen 127.0.0.1:1" in out["message"]
    # Not an address at all: said before anything is sent, by the client and the CLI alike.
    for address in ("127.0.0.1", "https://127.0.0.1:7600", ":7600"):
        out = run_client("""
            try:
                Client(%r)
            except ConfigurationError as e:
                print(json.dumps(e.message))
        """ % address, client_env())
        assert "is not host:port" in out and "127.0.0.1:7600" in out, out
        r = subprocess.run([str(bins.prs), "--master", address, "list"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and "is not host:port" in r.stderr, r.stderr


def test_tls_and_tokens_as_the_cli(cluster, tmp_path):  # noqa: F811 (the fixture)
    cluster.agent("n1")
    job_id, job = submit_as(cluster, tmp_path, "alice", n_files=6, name="alice-job")
    token_file = tmp_path / "bob.token"
    token_file.write_text(cluster.tokens["bob"] + "\n")
    out = run_client("""
        import os
        results = {}
        alice = Client(token=%r, tls=Tls(%r))
        results["alice"] = alice.wait(%r, timeout=90).state
        bob = Client()  # $PRS_TOKEN_FILE and $PRS_TLS_CA, as the CLI
        mine = bob.submit(%r, overrides={"name": "bob-job", "output": %r})
        results["bob"] = [mine.job_id, bob.wait(mine.job_id, timeout=90).state]
        for name, make in (("stranger", lambda: Client(token="0" * 64, tls=%r)),
                           ("plaintext", lambda: Client(token=%r, tls=False))):
            try:
                make().get(%r)
            except PrsError as e:
                results[name] = [type(e).__name__, e.code]
        try:
            bob.cancel(%r)
        except PermissionDeniedError as e:
            results["bob_cancels_alice"] = e.code
        try:
            Client("10.1.2.3:7600", token="t", tls=False)
        except FailedPreconditionError as e:
            results["clear_text"] = e.message
        print(json.dumps(results))
    """ % (cluster.tokens["alice"], str(cluster.ca), job_id, str(job.job_file),
           str(tmp_path / "bob-out"), str(cluster.ca), cluster.tokens["alice"], job_id, job_id),
        client_env(cluster.master.address, PRS_TOKEN_FILE=token_file, PRS_TLS_CA=cluster.ca))
    assert out["alice"] == "SUCCEEDED"
    assert out["bob"][1] == "SUCCEEDED"
    assert cluster.status(out["bob"][0])["owner"] == "bob"
    assert out["stranger"] == ["PermissionDeniedError", "UNAUTHENTICATED"]
    assert out["plaintext"][0] == "MasterUnavailableError"  # a TLS master, a plaintext client
    assert out["bob_cancels_alice"] in ("PERMISSION_DENIED", "NOT_FOUND")
    assert "refusing to send your token in clear text to 10.1.2.3:7600" in out["clear_text"]
