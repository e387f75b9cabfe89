"""Tagging music libraries (reserved for the `genrescope tag` command).
"""
