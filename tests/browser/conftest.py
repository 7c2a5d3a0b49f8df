"""The browser tests' shared fixtures: one ``python -m runtime --demo`` and one Chromium per test module."""

from tests.browser.test_generation_ui import browser, runtime  # noqa: F401 - fixtures, registered for the folder
