"""Isolated execution of untrusted encoder and decoder code."""
