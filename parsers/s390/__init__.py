"""The kernel's structures as s390x lays them out: lowcore, pt_regs, stack_frame, notes
(layouts, construct schemas, fast records), stack ranges, task flags."""
