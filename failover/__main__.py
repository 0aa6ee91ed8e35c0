"""`python -m failover` runs the CLI."""

import sys

from failover.cli import main

sys.exit(main())
