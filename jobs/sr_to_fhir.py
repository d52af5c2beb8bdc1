"""spark-submit entry: `spark-submit jobs/sr_to_fhir.py --input URI... --output URI [options]` runs what
`sr2fhir run` runs, with the same flags, on the session spark-submit gives it (jobs/cli.py)."""

import sys
from pathlib import Path

if not __package__:  # run as a file: make `jobs` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
