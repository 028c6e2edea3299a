"""The kernel's livepatch state read from a dump, and its transition replayed.

:mod:`.state` reads ``klp_patches``, ``klp_transition_patch``, ``klp_target_state``, the
``klp_ops`` function stacks and each task's ``patch_state``; :mod:`.replay` applies
``klp_try_switch_task()`` to every task still pending, the kernel's way and in its order.
"""
