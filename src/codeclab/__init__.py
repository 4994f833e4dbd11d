"""codeclab: an autonomous lab that designs video codecs and tests them honestly."""

__version__ = "0.1.0"
