import sys

from ecgsearch.cli import main

sys.exit(main())
