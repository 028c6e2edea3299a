"""Meaning and faces: the kernel model, the unwinder and its rules, the CLI and the TUI."""
