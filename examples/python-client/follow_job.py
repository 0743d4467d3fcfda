#!/usr/bin/python3
"""Submits a job to a prs-master from Python, follows it, and shows its first error.

    /usr/bin/python3 examples/python-client/follow_job.py examples/digits/job.yaml \
        --set mini_batch_size=50

The master is $PRS_MASTER (else 127.0.0.1:7600): start one with `prs-master` and an agent with
`prs-agent --master 127.0.0.1:7600` first (README, "Day two"). Exits 0 when the job succeeded.
"""

import argparse
import sys

from prs.client import Client, PrsError


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job_file", help="the job's YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the job file, as prs submit --set")
    parser.add_argument("--master", help="host:port of prs-master")
    args = parser.parse_args()

    try:
        with Client(args.master) as client:
            job = client.submit(args.job_file, overrides=args.set)
            print("submitted %s; logs in %s" % (job.job_id, job.log_dir), flush=True)
            for status in client.watch(job.job_id):
                c = status.counts
                print("%s: %d/%d items, %d failed, %.1f items/s" % (
                    status.state, c.items_succeeded + c.items_failed, c.items_total,
                    c.items_failed, status.items_per_second), flush=True)
            print("job %s %s; output: %s" % (status.job_id, status.state,
                                             status.output_file or status.output_dir))
            error = client.first_error(job.job_id)
            if error:
                print("first error: %s" % error.error)
                if error.traceback:
                    print("--- %s ---\n%s" % (error.log, error.traceback.rstrip()))
            return 0 if status.succeeded else 1
    except PrsError as e:
        print("error (%s): %s" % (e.code, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
