"""Version of the logdrain package."""

__version__ = "0.1.0"
