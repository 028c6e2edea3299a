"""The explorer: a Textual app over the kernel model (``backchain DUMP``)."""
