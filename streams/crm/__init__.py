"""The CRM's side of the closed loop: consume at-risk alerts, report outreach outcomes.

See docs/crm.md. Importable without Faust (kafka-python only).
"""

from streams.crm.feed import AlertFeed
from streams.crm.reporter import OutcomeReporter

__all__ = ["AlertFeed", "OutcomeReporter"]
