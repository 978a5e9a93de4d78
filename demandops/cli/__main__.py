"""`python -m demandops.cli`: the `demandops` command where no console script is installed (an
Azure ML job runs the uploaded code this way)."""

import sys

from demandops.cli.main import main

sys.exit(main())
