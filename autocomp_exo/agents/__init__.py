"""Agents: plan (choose a menu option) then implement (write schedule steps)."""
from .base import Agent, Candidate, Plan
from .offline import OfflineAgent

__all__ = ["Agent", "Candidate", "Plan", "OfflineAgent"]
