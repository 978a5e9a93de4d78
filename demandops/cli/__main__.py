"""`python -m demandops.cli`: the same as the `demandops` command."""

import sys

from demandops.cli.main import main

sys.exit(main())
