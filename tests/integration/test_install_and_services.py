"""The master's standard gRPC services, and the installed layout.

- prs-master serves the standard health service and server reflection.
- After `cmake --install`, the installed binaries run a job with their installed Python runtime
  and no PYTHONPATH."""

import os
import shutil
import subprocess

import grpc

from itest_helpers import BIN_DIR, PYTHON, SOURCE_DIR


def test_master_serves_health_and_reflection(master):
    with grpc.insecure_channel(master.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        # grpc.health.v1.Health/Check with an empty HealthCheckRequest (service "").
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        reply = check(b"", timeout=10)
        assert reply == b"\x08\x01", "expected status SERVING (field 1 = 1), got %r" % reply
        # ServerReflectionInfo with list_services = "" (field 7, empty string).
        info = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        replies = b"".join(info(iter([b"\x3a\x00"]), timeout=10))
        for service in (b"prs.v1.JobService", b"prs.v1.AgentService", b"grpc.health.v1.Health"):
            assert service in replies, (service, replies)


def test_installed_binaries_run_a_job_without_pythonpath(tmp_path, make_job):
    build_dir = BIN_DIR.parent
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(build_dir), "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=120)
    for name in ("prs", "prs-master", "prs-agent"):
        assert os.access(prefix / "bin" / name, os.X_OK), name
    runtime = prefix / "share" / "prs" / "python" / "prs" / "_worker.py"
    assert runtime.is_file()
    job = make_job(tmp_path, 5, (
        "import os, prs\n"
        "def run(mini_batch):\n"
        "    return ['%s %s' % (os.path.basename(p), prs.__file__) for p in mini_batch]\n"),
        mini_batch_size=2)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(prefix / "bin" / "prs"), "run", str(job.job_file), "--state-dir",
                        str(tmp_path / "state")], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(job.output_file)
    lines = job.output_file.read_text().splitlines()
    assert sorted(l.split()[0] for l in lines) == ["%05d.txt" % i for i in range(5)]
    # The workers imported the installed runtime, not the source tree's.
    assert all(l.split()[1].startswith(str(prefix)) for l in lines), lines
    # The installed Python client: its stubs, and the installed `prs` that checks jobs (-s: not
    # the build's prs.pth in the user's site-packages).
    r = subprocess.run(["/usr/bin/python3", "-s", "-c",
                        "import prs.client, prs._paths, prs.v1.job_service_pb2_grpc as g\n"
                        "print(prs.client.__file__, g.__file__, prs._paths.BIN_DIR)"],
                       env=dict(env, PYTHONPATH=str(prefix / "share" / "prs" / "python")),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    client, stubs, bin_dir = r.stdout.split()
    assert client.startswith(str(prefix)) and stubs.startswith(str(prefix)), r.stdout
    assert bin_dir == str(prefix / "bin")
