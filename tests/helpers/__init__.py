"""Helpers shared by the test modules (generated libraries, fake predictors, small models, a
browser head); test modules import them as ``helpers.<module>``, never from one another.
Fixtures live in tests/conftest.py."""
