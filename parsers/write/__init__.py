"""Dumps written: any format converted to an ELF vmcore, and the ELF core writer."""
