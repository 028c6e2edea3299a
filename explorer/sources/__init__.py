"""Where symbols and types come from, and whether they belong to the dump.

``verify``: evidence that a System.map, vmlinux or type profile is the dump's own (release,
``linux_banner``, BUILD-ID, VMCOREINFO ``SYMBOL()`` values) and refusal when it is not.
``companions``: files beside the dump recognised by content, verified one by one.
"""
