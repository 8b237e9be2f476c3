"""Helpers every test file shares: real servers on free ports, the app with test settings."""
