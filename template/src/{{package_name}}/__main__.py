"""`python -m <package>` runs the server; see serving.py."""

from .serving import main

if __name__ == "__main__":
    raise SystemExit(main())
