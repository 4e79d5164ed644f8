"""Hybrid recommenders: weighted, voting, learned and switching blends of other models."""
