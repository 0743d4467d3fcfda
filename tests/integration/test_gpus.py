"""GPU assignment without a GPU: a fake nvidia-smi on the agent's PATH lists N GPUs, and each
worker writes the CUDA_VISIBLE_DEVICES it was given into its output rows. Checked: detection,
distinct GPUs while there are enough, round-robin sharing beyond, gpus_per_process 2 and 0,
prs-agent --gpus 0,2, the agent's own CUDA_VISIBLE_DEVICES (a Slurm allocation), and a job that
sets CUDA_VISIBLE_DEVICES itself; the assignment is in agent.txt and in each process's log."""
import csv
import json
import os
import stat

import pytest

from itest_helpers import PYTHON, submit, wait_for, wait_state

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

FAKE_NVIDIA_SMI = """#!/bin/sh
# A stand-in for nvidia-smi on a node with $FAKE_GPUS GPUs (tests only): the list, the GPU query
# (37% busy, 1,000 of 81,559 MiB used, power unknown) and the compute apps (every prs worker on
# GPU 0 with 512 MiB).
n="${FAKE_GPUS:-0}"
case "$1" in
  -L)
    i=0
    while [ "$i" -lt "$n" ]; do
      echo "GPU $i: NVIDIA Fake GPU (UUID: GPU-fake-$i)"
      i=$((i + 1))
    done ;;
  --query-gpu=*)
    i=0
    while [ "$i" -lt "$n" ]; do
      echo "$i, GPU-fake-$i, NVIDIA Fake GPU, 37, 1000, 81559, 45, [N/A]"
      i=$((i + 1))
    done ;;
  --query-compute-apps=*)
    for p in /proc/[0-9]*; do
      if tr '\\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q "prs._worker"; then
        echo "${p#/proc/}, GPU-fake-0, 512"
      fi
    done ;;
  *) exit 9 ;;
esac
"""

# One row per input: "<input> <process> <CUDA_VISIBLE_DEVICES>"; a short sleep so that every
# worker gets mini-batches.
SCRIPT = r'''
import os, time

def run(mini_batch):
    time.sleep(0.05)
    return ["%s %s %s" % (os.path.basename(p), os.environ["PRS_PROCESS_NAME"],
                          os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
            for p in mini_batch]
'''


def agent_env(tmp_path, gpus, visible=None):
    """The agent's environment: the fake nvidia-smi first on PATH, listing `gpus` GPUs."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = "%s:%s" % (bin_dir, env.get("PATH", "/usr/bin:/bin"))
    env["FAKE_GPUS"] = str(gpus)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return env


def run_job(master, start_agent, prs, make_job, tmp_path, node, processes, extra=(),
            visible=None, gpus=4, script=SCRIPT, **keys):
    """Runs a job of 6 inputs per process on one agent; returns {process: devices} from the
    output and the text of the node's agent.txt."""
    start_agent(node, extra=extra, env=agent_env(tmp_path, gpus, visible))
    job = make_job(tmp_path, 6 * processes, script, job_dir_name="job-" + node, name=node,
                   mini_batch_size=1, process_count_per_node=processes, **keys)
    job_id = submit(prs, job.job_file)
    st = wait_state(prs, job_id, TERMINAL, 60)
    assert st["state"] == "SUCCEEDED", st
    seen = {}
    for line in job.output_file.read_text().splitlines():
        _, process, devices = (line.split(" ", 2) + [""])[:3]
        seen.setdefault(process, set()).add(devices)
    assert all(len(v) == 1 for v in seen.values()), seen  # one assignment per worker
    logs = master.state_dir / "jobs" / job_id / "logs"
    agent_txt = logs / "sys" / "node" / node / "agent.txt"
    wait_for(lambda: agent_txt.exists() and "stopped on this node" in agent_txt.read_text(), 20,
             message="agent.txt shipped")
    return {p: v.pop() for p, v in seen.items()}, agent_txt.read_text(), logs / "sys" / "node" / node


@pytest.mark.parametrize("case", [
    # name, GPUs listed, processes, agent flags, job keys, agent's CUDA_VISIBLE_DEVICES,
    # what each worker sees, the node's GPUs in prs nodes
    ("distinct", 4, 2, (), {}, None, {"process000": "0", "process001": "1"}, "0,1,2,3"),
    ("shared", 1, 3, (), {}, None, {"process000": "0", "process001": "0", "process002": "0"},
     "0"),
    ("round-robin", 2, 3, (), {}, None,
     {"process000": "0", "process001": "1", "process002": "0"}, "0,1"),
    ("two-each", 4, 2, (), {"gpus_per_process": 2}, None,
     {"process000": "0,1", "process001": "2,3"}, "0,1,2,3"),
    ("hidden", 4, 2, (), {"gpus_per_process": 0}, None, {"process000": "", "process001": ""},
     "0,1,2,3"),
    ("subset", 4, 2, ("--gpus", "0,2"), {}, None, {"process000": "0", "process001": "2"}, "0,2"),
    ("slurm", 4, 2, (), {}, "2,3", {"process000": "2", "process001": "3"}, "2,3"),
    # Slurm's "no GPU", and --gpus 0 under an allocation: the workers see none, not the agent's.
    ("nodevfiles", 4, 2, (), {}, "NoDevFiles", {"process000": "", "process001": ""}, ""),
    ("zero", 4, 2, ("--gpus", "0"), {}, "2,3", {"process000": "", "process001": ""}, ""),
    ("none", 0, 2, (), {}, None, {"process000": "<unset>", "process001": "<unset>"}, ""),
])
def test_each_worker_gets_its_gpus(master, start_agent, prs, make_job, tmp_path, case):
    name, gpus, processes, flags, keys, visible, expected, node_gpus = case
    node_gpus = node_gpus.split(",") if node_gpus else []
    node = "gpu-" + name
    seen, agent_txt, node_logs = run_job(master, start_agent, prs, make_job, tmp_path, node,
                                         processes, extra=flags, visible=visible, gpus=gpus,
                                         **keys)
    assert seen == expected, (seen, agent_txt)
    # prs nodes shows the GPUs the node's workers may use.
    r = prs("nodes", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert [n["gpus"] for n in json.loads(r.stdout) if n["node_id"] == node] == [node_gpus], r.stdout
    r = prs("nodes")
    row = [line for line in r.stdout.splitlines() if line.startswith(node + " ")]
    assert row and (",".join(node_gpus) or "-") in row[0].split(), r.stdout
    # The assignment is in agent.txt and in each process's own log.
    for process, devices in expected.items():
        if devices == "<unset>":
            assert "CUDA_VISIBLE_DEVICES" not in agent_txt, agent_txt
            continue
        started = [l for l in agent_txt.splitlines() if "worker %s started" % process in l]
        assert started and started[0].endswith("CUDA_VISIBLE_DEVICES=" + devices), agent_txt
        own = (node_logs / (process + ".txt")).read_text()
        assert "worker started pid=" in own and "CUDA_VISIBLE_DEVICES=" + devices in own, own


def test_a_job_that_sets_cuda_visible_devices_gets_that_value(master, start_agent, prs, make_job,
                                                              tmp_path):
    seen, agent_txt, _ = run_job(
        master, start_agent, prs, make_job, tmp_path, "gpu-own", 2,
        environment={"python": PYTHON, "variables": {"CUDA_VISIBLE_DEVICES": "GPU-fake-3"}})
    assert seen == {"process000": "GPU-fake-3", "process001": "GPU-fake-3"}, seen
    assert "CUDA_VISIBLE_DEVICES=GPU-fake-3 (set by the job)" in agent_txt, agent_txt


def test_a_bad_gpus_option_and_key_are_refused(bins, prs, make_job, tmp_path):
    import subprocess
    r = subprocess.run([str(bins.agent), "--gpus", "0;rm", "--master", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "is not a GPU" in r.stderr, r.stderr
    job = make_job(tmp_path, 1, SCRIPT, gpus_per_process=-1)
    r = prs("submit", job.job_file)
    assert r.returncode != 0 and "gpus_per_process: must be between 0 (no GPU) and 64" in r.stderr, \
        r.stderr


def test_gpu_use_is_recorded_per_gpu_and_per_worker(master, start_agent, prs, make_job, tmp_path):
    # Long enough (about 1.5 s) for a sample while the workers run; the agent may use GPUs 0
    # and 1 of the machine's 4, and only theirs are recorded.
    _, _, node_logs = run_job(master, start_agent, prs, make_job, tmp_path, "gpu-perf", 2, gpus=4,
                              extra=("--gpus", "0,1"), resource_monitor_interval=1,
                              script=SCRIPT.replace("time.sleep(0.05)", "time.sleep(0.25)"))
    perf = node_logs.parent.parent.parent / "perf" / "gpu-perf"
    wait_for(lambda: (perf / "gpu_processes_usage.csv").exists(), 20, message="GPU csv files")
    with open(perf / "gpu_usage.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Utc Time", "GPU", "Uuid", "Name", "Utilization Percent",
                       "Memory Used (MiB)", "Memory Total (MiB)", "Temperature (C)",
                       "Power (W)"], rows[0]
    assert {r[1] for r in rows[1:]} == {"0", "1"}, rows
    assert all(r[4] == "37.00" and r[5] == "1000.00" and r[6] == "81559.00" and r[8] == ""
               for r in rows[1:]), rows
    with open(perf / "gpu_processes_usage.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Utc Time", "Pid", "Process Name", "GPU Uuid", "GPU Memory (MiB)"], rows[0]
    assert len(rows) >= 2 and all(r[2].startswith("process") and r[4] == "512.00"
                                  for r in rows[1:]), rows


OOM_SCRIPT = r'''
def run(mini_batch):
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.35 GiB total)")
'''


def test_a_cuda_out_of_memory_error_is_reported_with_the_gpu_memory(master, start_agent, prs,
                                                                   make_job, tmp_path):
    start_agent("gpu-oom", env=agent_env(tmp_path, 1))
    job = make_job(tmp_path, 1, OOM_SCRIPT, job_dir_name="job-oom", name="gpu-oom",
                   run_max_try=1, error_threshold=-1)
    job_id = submit(prs, job.job_file)
    wait_state(prs, job_id, TERMINAL, 60)
    r = prs("logs", job_id, "--errors")
    assert r.returncode == 0, r.stderr
    assert ("CUDA out of memory (GPU 0: 1,000 of 81,559 MiB used when run() failed): "
            "RuntimeError: CUDA out of memory") in r.stdout, r.stdout
