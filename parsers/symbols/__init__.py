"""Symbol tables: System.map and vmlinux symbols, the kernel's kallsyms (located or found by
content), the table cache."""
