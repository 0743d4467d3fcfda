"""prs: the Python side of the prs batch-inference orchestrator.

``from prs import EntryScript`` gives the entry-script helper; the worker
runtime that loads a user's entry script is ``python -m prs._worker``;
``prs.client`` submits and follows jobs on a prs-master.
"""



def _add_stub_folders(path):
    """The generated stubs of prs.v1 (for prs.client) live in the build tree
    (<build>/python/prs/v1), or next to this file once installed: adds each
    `prs` folder on sys.path that holds them (not the current directory's) to
    this package's path."""
    import os
    import sys
    for entry in sys.path:
        if entry in ("", "."):
            continue
        folder = os.path.join(os.path.abspath(entry), "prs")
        if folder not in path and os.path.isfile(os.path.join(folder, "v1", "job_pb2.py")):
            path.append(folder)


_add_stub_folders(__path__)

from prs.entry_script import EntryScript  # noqa: E402

__all__ = ["EntryScript"]
__version__ = "0.1.0"
