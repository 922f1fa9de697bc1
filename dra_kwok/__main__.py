"""Lets `python -m dra_kwok` behave exactly like the `dra-kwok` console script."""

from dra_kwok.cli import main

if __name__ == "__main__":
    main()
