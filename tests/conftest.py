"""Test-wide settings: property tests are derandomized so every CI run checks the same cases."""

from hypothesis import settings

settings.register_profile("project", derandomize=True, deadline=None)
settings.load_profile("project")
