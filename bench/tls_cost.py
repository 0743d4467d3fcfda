#!/usr/bin/python3
"""What TLS and tokens cost: one master, one agent, 20,000 tiny files, with and without them.

Starts, for each mode, a fresh prs-master on loopback and one prs-agent
(process_count_per_node --processes), then times `prs submit --wait` of a job
over --files tiny files (mini_batch_size --mini-batch-size) and checks that the
output holds each input exactly once. Modes, alternating, --repeat times each:

  plain  no TLS, no tokens (a loopback master needs neither)
  tls    --tls-cert/--tls-key (certificates from deploy/make-certs.sh) and
         --tokens; the agent with --tls-ca and --token-file, the CLI with
         PRS_TLS_CA and PRS_TOKEN

Prints the median and the range of each mode's wall time, and of the time from
submit to the last commit (the job's end_time - submit_time): the wall also
holds the end's publication, which waits for the agent's next heartbeat.

    /usr/bin/python3 bench/tls_cost.py --files 20000 --repeat 3
"""

import argparse
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

ENTRY = """\
import os

def run(mini_batch):
    return [os.path.basename(p) for p in mini_batch]
"""


def wait_port(port_file, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("prs-master exited: %s" % proc.returncode)
        if os.path.exists(port_file):
            text = open(port_file).read().strip()
            if text.isdigit():
                return int(text)
        time.sleep(0.05)
    raise SystemExit("prs-master did not start")


def run_once(args, root, mode, n):
    bins = args.bin_dir
    state = os.path.join(root, "%s-%d" % (mode, n))
    os.makedirs(state)
    port_file = os.path.join(state, "port")
    master = [os.path.join(bins, "prs-master"), "--listen", "127.0.0.1:0", "--port-file",
              port_file, "--state-dir", os.path.join(state, "master")]
    agent_extra, env = [], dict(os.environ)
    for k in ("PRS_TOKEN", "PRS_TOKEN_FILE", "PRS_TLS_CA"):
        env.pop(k, None)
    if mode == "tls":
        tls = os.path.join(root, "tls")
        master += ["--tls-cert", os.path.join(tls, "master.pem"), "--tls-key",
                   os.path.join(tls, "master.key"), "--tokens", os.path.join(root, "tokens")]
        agent_extra = ["--tls-ca", os.path.join(tls, "ca.pem"), "--token-file",
                       os.path.join(root, "agent.token")]
        env["PRS_TLS_CA"] = os.path.join(tls, "ca.pem")
        env["PRS_TOKEN"] = open(os.path.join(root, "user.token")).read().strip()
    log = open(os.path.join(state, "daemons.log"), "w")
    m = subprocess.Popen(master, stdout=log, stderr=subprocess.STDOUT)
    a = None
    try:
        port = wait_port(port_file, m)
        env["PRS_MASTER"] = "127.0.0.1:%d" % port
        a = subprocess.Popen([os.path.join(bins, "prs-agent"), "--master", env["PRS_MASTER"],
                              "--work-dir", os.path.join(state, "agent"), "--node-id", "bench",
                              "--python", "/usr/bin/python3", *agent_extra],
                             stdout=log, stderr=subprocess.STDOUT)
        out = os.path.join(state, "out")
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(bins, "prs"), "submit", os.path.join(root, "job.yaml"),
                            "--wait", "--set", "output=" + out], env=env,
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise SystemExit("%s: prs submit failed: %s" % (mode, r.stderr))
        rows = open(os.path.join(out, "rows.txt")).read().splitlines()
        if len(rows) != n_files(args) or len(set(rows)) != len(rows):
            raise SystemExit("%s: %d rows for %d inputs" % (mode, len(rows), n_files(args)))
        job_id = r.stdout.split()[0]
        st = json.loads(subprocess.run([os.path.join(bins, "prs"), "status", job_id, "--output",
                                        "json"], env=env, capture_output=True, text=True,
                                       check=True).stdout)
        # Submit to the last commit: the work itself, without the end's publication (which
        # waits for the agent to learn of the end at its next heartbeat and ship its logs).
        return wall, (st["end_time_ms"] - st["submit_time_ms"]) / 1000.0
    finally:
        for p in (a, m):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        log.close()


def n_files(args):
    return args.files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mini-batch-size", type=int, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"))
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="prs-bench-tls-")
    try:
        data = os.path.join(root, "data")
        os.makedirs(data)
        for i in range(args.files):
            with open(os.path.join(data, "%06d.txt" % i), "w") as f:
                f.write("%d\n" % i)
        src = os.path.join(root, "src")
        os.makedirs(src)
        with open(os.path.join(src, "entry.py"), "w") as f:
            f.write(ENTRY)
        with open(os.path.join(root, "job.yaml"), "w") as f:
            f.write("name: bench-tls\nentry_script: entry.py\nsource_directory: src\n"
                    "inputs: [{name: files, path: data}]\noutput: out\n"
                    "append_row_file_name: rows.txt\nmini_batch_size: %d\n"
                    "process_count_per_node: %d\nenvironment: {python: /usr/bin/python3}\n"
                    % (args.mini_batch_size, args.processes))
        subprocess.run([os.path.join(REPO, "deploy", "make-certs.sh"), os.path.join(root, "tls"),
                        "--master-name", "127.0.0.1"], check=True, capture_output=True)
        tokens = {"user": secrets.token_hex(32), "agent": secrets.token_hex(32)}
        with open(os.path.join(root, "tokens"), "w") as f:
            f.write("sha256:%s bench submit\n" % hashlib.sha256(tokens["user"].encode()).hexdigest())
            f.write("sha256:%s agents agent\n" % hashlib.sha256(tokens["agent"].encode()).hexdigest())
        for name in tokens:
            with open(os.path.join(root, "%s.token" % name), "w") as f:
                f.write(tokens[name] + "\n")
        walls = {"plain": [], "tls": []}
        works = {"plain": [], "tls": []}
        for n in range(args.repeat):
            for mode in ("plain", "tls"):
                wall, work = run_once(args, root, mode, n)
                walls[mode].append(wall)
                works[mode].append(work)
                print("run %d %-5s wall %6.2f s, submit to last commit %6.2f s"
                      % (n + 1, mode, wall, work), flush=True)
        print("%d files, mini_batch_size %d, %d processes, one agent:"
              % (args.files, args.mini_batch_size, args.processes))
        for title, figures in (("`prs submit --wait` wall", walls),
                               ("submit to the last commit", works)):
            print("  " + title)
            for mode, w in figures.items():
                print("    %-5s median %.2f s  [%.2f-%.2f]" % (mode, statistics.median(w),
                                                              min(w), max(w)))
            plain, tls = statistics.median(figures["plain"]), statistics.median(figures["tls"])
            print("    TLS and tokens cost %+.1f %%" % (100.0 * (tls - plain) / plain))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
