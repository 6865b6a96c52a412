"""Simulator unit tests."""
