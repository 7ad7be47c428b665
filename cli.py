"""Run genepheno from a checkout without installing: ``python cli.py --help``."""

from genepheno.cli import main

if __name__ == "__main__":
    main()
