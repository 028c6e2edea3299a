"""The explorer's screens: overview, stack, lowcore, memory, help."""
