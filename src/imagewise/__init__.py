"""imagewise: make container images good and keep them good."""

__version__ = "0.1.0"
__all__ = ["__version__"]
