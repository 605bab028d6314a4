"""The package's version, in a module beneath every other (the package's ``__init__`` imports
modules that need it, so they cannot import it from there without a cycle)."""

__version__ = "0.1.0"
