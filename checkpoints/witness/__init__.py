"""Proof that the saver delivers what LangGraph promises: see `capabilities`."""
