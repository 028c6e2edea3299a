"""Below the frame: s390x machine code.

Disassembly (:mod:`.insn`, :mod:`.listing`), code bytes as the kernel ran them (:mod:`.text`),
the call-site check of return addresses (:mod:`.callsite`), where an interrupted function
stood (:mod:`.prologue`) and the back-chain audit (:mod:`.audit`).

Capstone is imported only by the modules that decode instructions, and only when they first
decode: ``backchain --help`` and the commands that never look at code do not load it.
"""
