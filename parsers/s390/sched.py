"""Task flags and states as include/linux/sched.h defines them (the values read from a
``task_struct``), one definition for task discovery and the type probe."""

from __future__ import annotations

# task_struct.flags bits (include/linux/sched.h, stable since v2.6).
PF_IDLE = 0x00000002
PF_EXITING = 0x00000004
PF_KTHREAD = 0x00200000

# Task state bits (include/linux/sched.h, v4.14+): what get_task_state() reports.
TASK_REPORT = 0x7F
#: TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD): an idle kworker's state.
TASK_IDLE = 0x402
TASK_RTLOCK_WAIT = 0x1000
STATE_LETTERS = "RSDTtXZPI"  # index = fls(state); "I" is TASK_REPORT_IDLE
#: Task states (v4.14-v7.x): at most one of these bits (TASK_RUNNING is none) ... S D T t P
#: X(TASK_DEAD) WAKING NEW RTLOCK_WAIT FROZEN ...
STATE_BASE = (0x1, 0x2, 0x4, 0x8, 0x40, 0x80, 0x200, 0x800, 0x1000, 0x8000)
#: ... with any of TASK_WAKEKILL, TASK_NOLOAD, TASK_FREEZABLE, TASK_FREEZABLE_UNSAFE.
STATE_MODIFIERS = 0x100 | 0x400 | 0x2000 | 0x4000
#: Exit states: EXIT_DEAD, EXIT_ZOMBIE, EXIT_TRACE.
EXIT_STATES = (0, 0x10, 0x20, 0x30)

__all__ = [
    "EXIT_STATES",
    "PF_EXITING",
    "PF_IDLE",
    "PF_KTHREAD",
    "STATE_BASE",
    "STATE_LETTERS",
    "STATE_MODIFIERS",
    "TASK_IDLE",
    "TASK_REPORT",
    "TASK_RTLOCK_WAIT",
]
