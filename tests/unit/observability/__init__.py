"""Tests of metrics, alert rules and the Grafana dashboard."""
