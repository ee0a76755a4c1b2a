import sys

from ecgsearch.cli.app import main

sys.exit(main())
