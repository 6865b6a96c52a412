"""Touchpoint: an event-streaming customer-experience tracker.

The data path is the folder tree: ``codec`` (bytes to a typed event or a
rejection), ``engine`` (pure scoring, no I/O, time from events), ``agents``
(Faust wiring), ``sinks`` (Kafka topics, Redis, metrics). ``sdk`` and
``collector`` are the ways in; ``sim`` and ``replay`` run the engine offline.
"""

__version__ = "0.1.0"
