"""Stacks walked as the kernel's unwinder walks them, and the verdict on each."""
