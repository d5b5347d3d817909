"""dataops: take a data-science project off the laptop and into production on OpenStack."""

__version__ = "0.1.0"
