import sys

from d2f.cli import main

sys.exit(main())
