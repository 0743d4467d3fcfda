"""prs: the Python side of the prs batch-inference orchestrator.

``from prs import EntryScript`` gives the entry-script helper; the worker
runtime that loads a user's entry script is ``python -m prs._worker``.
"""

from prs.entry_script import EntryScript

__all__ = ["EntryScript"]
__version__ = "0.1.0"
