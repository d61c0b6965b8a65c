import sys

from rimrl.cli import main

sys.exit(main())
