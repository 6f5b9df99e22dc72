import sys

from cirscope.cli import main

sys.exit(main())
