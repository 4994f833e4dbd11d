"""Designers propose codecs: the offline evolutionary search, or an LLM."""
