#!/usr/bin/env python3
"""Entry point; plot/muxplot runs this with an interpreter that has matplotlib."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import matplotlib  # noqa: F401
except ImportError:
    print(f"muxplot: {sys.executable} has no matplotlib; install it with: apt-get install python3-matplotlib "
          "(or run plot/muxplot, which looks for a Python that has it)", file=sys.stderr)
    sys.exit(1)

from muxplotlib.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
