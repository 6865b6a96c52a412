"""Seeded, realistic multi-channel traffic with injected degradations and ground-truth labels.

>>> from streams.sim import SimConfig, Simulation
>>> sim = Simulation(SimConfig(customers=100, days=7, seed=1))
>>> events = list(sim.events())   # contract dicts, in occurred_at order
>>> labels = sim.labels()         # one Label per degraded customer
"""

from streams.sim.config import DEGRADATIONS, TIERS, SimConfig, parse_start
from streams.sim.simulation import Label, Simulation, simulate

__all__ = ["DEGRADATIONS", "TIERS", "Label", "SimConfig", "Simulation", "parse_start", "simulate"]
