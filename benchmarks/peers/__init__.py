"""Peer implementations measured against soundfleet (not part of soundfleet itself)."""
