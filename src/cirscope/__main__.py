import sys

from cirscope.cli._main import main

sys.exit(main())
