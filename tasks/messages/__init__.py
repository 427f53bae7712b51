"""Versioned inbound/outbound message models: the public contract."""
