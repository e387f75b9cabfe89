"""Tagging music libraries: walking collections, reading and writing genre tags safely, the
journal that lets a killed run resume or be undone, the report, and the tagging job itself
(``genrescope tag``, the beets plugin)."""
