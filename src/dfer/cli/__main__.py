"""`python -m dfer.cli ...`, as the `dfer` command."""

import sys

from dfer.cli import main

sys.exit(main())
