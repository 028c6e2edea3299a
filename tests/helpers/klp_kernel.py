"""Synthetic kernels with a livepatch state, written the way kernel/livepatch/core.c and
patch.c link it: ``klp_patches`` → ``klp_patch.obj_list`` → ``klp_object.func_list``, and
one ``klp_ops`` per patched function whose ``func_stack`` holds the newest patch first.

The struct layouts follow include/linux/livepatch.h of v6.12 (members in its order, an
8-byte ``struct kobject`` stand-in), which is all a type profile says about them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from explorer.training.synthetic import SyntheticKernel, SyntheticTask

KLP_OFFSETS = {
    "klp_patch.mod": 0,
    "klp_patch.objs": 8,
    "klp_patch.states": 16,
    "klp_patch.replace": 24,
    "klp_patch.list": 32,
    "klp_patch.kobj": 48,
    "klp_patch.obj_list": 112,
    "klp_patch.enabled": 128,
    "klp_patch.forced": 129,
    "klp_object.name": 0,
    "klp_object.funcs": 8,
    "klp_object.kobj": 48,
    "klp_object.func_list": 112,
    "klp_object.node": 128,
    "klp_object.mod": 144,
    "klp_object.dynamic": 152,
    "klp_object.patched": 153,
    "klp_func.old_name": 0,
    "klp_func.new_func": 8,
    "klp_func.old_sympos": 16,
    "klp_func.old_func": 24,
    "klp_func.kobj": 32,
    "klp_func.node": 96,
    "klp_func.stack_node": 112,
    "klp_func.old_size": 128,
    "klp_func.new_size": 136,
    "klp_func.nop": 144,
    "klp_func.patched": 145,
    "klp_func.transition": 146,
    "klp_ops.node": 0,
    "klp_ops.func_stack": 16,
    # The last bytes of the synthetic task_struct (6.1 layout, 4608 bytes): unused there.
    "task_struct.patch_state": 4600,
    "task_struct.thread_info.flags": 0,
}
KLP_SIZES = {
    "klp_patch": 256,
    "klp_object": 160,
    "klp_func": 152,
    "klp_ops": 64,
    "klp_patch.replace": 1,
    "klp_patch.enabled": 1,
    "klp_patch.forced": 1,
    "klp_object.dynamic": 1,
    "klp_object.patched": 1,
    "klp_func.nop": 1,
    "klp_func.patched": 1,
    "klp_func.transition": 1,
    "klp_func.old_sympos": 8,
    "klp_func.old_size": 8,
    "klp_func.new_size": 8,
    "task_struct.patch_state": 4,
}
TIF_PATCH_PENDING = 5  # arch/s390/include/asm/thread_info.h up to v6.17


@dataclass
class Func:
    """One patched function: ``old`` in vmlinux, ``new`` (a symbol of the patch module)."""

    old: str
    new: str
    new_size: int = 0x100
    address: int = 0
    new_func: int = 0


class Livepatch:
    """The livepatch state of a :class:`SyntheticKernel` (call before saving it)."""

    def __init__(self, k: SyntheticKernel) -> None:
        k.offsets.update(KLP_OFFSETS)
        k.sizes.update(KLP_SIZES)
        self.k = k
        self.patches_head = self._head("klp_patches", "D")
        self.ops_head = self._head("klp_ops", "d")
        self.transition = k.alloc(8)
        k.add_symbol("klp_transition_patch", self.transition, "D")
        self.target = k.alloc(4)
        k.add_symbol("klp_target_state", self.target, "d")
        k.write(self.target, struct.pack(">i", -1))
        self.signals = k.alloc(4)
        k.add_symbol("klp_signals_cnt", self.signals, "b")
        online = k.alloc(8)
        k.add_symbol("__cpu_online_mask", online, "D")
        k.put_u64(online, (1 << k._ncpus) - 1)
        k.add_symbol("_end", 0xF000000, "B")
        self.ops: dict[int, int] = {}  # old_func -> klp_ops
        for task in k.tasks:
            self.task_state(task, -1)

    def _head(self, name: str, kind: str) -> int:
        head = self.k.alloc(16)
        self.k.add_symbol(name, head, kind)
        self.k.put_u64(head, head)
        self.k.put_u64(head + 8, head)
        return head

    def _u64(self, address: int) -> int:
        return int(struct.unpack(">Q", self.k._read(address, 8))[0])

    def _add(self, head: int, node: int, tail: bool = True) -> None:
        """``list_add_tail`` (or ``list_add`` at the head)."""
        k = self.k
        if tail:
            prev, nxt = self._u64(head + 8), head
        else:
            prev, nxt = head, self._u64(head)
        k.put_u64(node, nxt)
        k.put_u64(node + 8, prev)
        k.put_u64(prev, node)
        k.put_u64(nxt + 8, node)

    def _string(self, text: str) -> int:
        at = self.k.alloc(len(text) + 1)
        self.k.write(at, text.encode() + b"\0")
        return at

    def add_patch(
        self, name: str, funcs: list[Func], *, replace: bool = False, enabled: bool = True
    ) -> int:
        """Load a patch module with one vmlinux object patching ``funcs`` (applied: on
        every func_stack, ``patched`` set); returns its ``klp_patch``."""
        k, o = self.k, KLP_OFFSETS
        symbols = [(f.new, 0x100 * (i + 1), "t") for i, f in enumerate(funcs)]
        text = k.add_module(name, 0x100 * (len(funcs) + 2), symbols=symbols)
        module = self._u64(k.modules_head + 8) - k.offsets["module.list"]
        patch = k.alloc(KLP_SIZES["klp_patch"], 64)
        k.put_u64(patch + o["klp_patch.mod"], module)
        k.write(patch + o["klp_patch.replace"], bytes([replace]))
        k.write(patch + o["klp_patch.enabled"], bytes([enabled]))
        obj_list = patch + o["klp_patch.obj_list"]
        k.put_u64(obj_list, obj_list)
        k.put_u64(obj_list + 8, obj_list)
        self._add(self.patches_head, patch + o["klp_patch.list"])
        obj = k.alloc(KLP_SIZES["klp_object"], 64)
        func_list = obj + o["klp_object.func_list"]
        k.put_u64(func_list, func_list)
        k.put_u64(func_list + 8, func_list)
        k.write(obj + o["klp_object.patched"], b"\1")
        self._add(obj_list, obj + o["klp_object.node"])
        for i, f in enumerate(funcs):
            func = k.alloc(KLP_SIZES["klp_func"], 64)
            old = k.function(f.old)
            f.address, f.new_func = func, text + 0x100 * (i + 1)
            k.put_u64(func + o["klp_func.old_name"], self._string(f.old))
            k.put_u64(func + o["klp_func.new_func"], f.new_func)
            k.put_u64(func + o["klp_func.old_func"], old)
            k.put_u64(func + o["klp_func.old_size"], 0x1000)
            k.put_u64(func + o["klp_func.new_size"], f.new_size)
            k.write(func + o["klp_func.patched"], b"\1")
            self._add(func_list, func + o["klp_func.node"])
            ops = self.ops.get(old)
            if ops is None:
                ops = self.ops[old] = k.alloc(KLP_SIZES["klp_ops"], 64)
                stack = ops + o["klp_ops.func_stack"]
                k.put_u64(stack, stack)
                k.put_u64(stack + 8, stack)
                self._add(self.ops_head, ops + o["klp_ops.node"])
            self._add(ops + o["klp_ops.func_stack"], func + o["klp_func.stack_node"], tail=False)
        return patch

    def start_transition(
        self, patch: int, target: int, funcs: list[Func], signals_cnt: int = 0
    ) -> None:
        """``klp_init_transition`` + ``klp_start_transition`` for ``patch``: every func of it
        in transition; task states are set with :meth:`task_state`."""
        k = self.k
        k.put_u64(self.transition, patch)
        k.write(self.target, struct.pack(">i", target))
        k.write(self.signals, struct.pack(">I", signals_cnt))
        for f in funcs:
            k.write(f.address + KLP_OFFSETS["klp_func.transition"], b"\1")

    def task_state(self, task: SyntheticTask, patch_state: int, pending: bool = False) -> None:
        """``task->patch_state`` and ``TIF_PATCH_PENDING``."""
        k = self.k
        k.write(
            task.address + KLP_OFFSETS["task_struct.patch_state"], struct.pack(">i", patch_state)
        )
        k.put_u64(task.address, (1 << TIF_PATCH_PENDING) if pending else 0)
