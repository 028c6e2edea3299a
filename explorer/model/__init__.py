"""The dump as the kernel laid it out: opening, the Kernel's queries, tasks, modules, log."""
