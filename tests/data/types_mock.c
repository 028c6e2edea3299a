/*
 * Mock kernel structs for tests/test_types.py: the shapes backchain's type profile reads,
 * with the traps of the real s390x vmlinux (anonymous struct/union members, a nested struct
 * behind typedef + volatile, bitfields, a packed 8 KiB lowcore, a 16 KiB thread_union).
 * Offsets of the lowcore, stack_frame and pt_regs follow Debian's 6.1 s390x kernel.
 *
 * Rebuild the committed object (needs gcc-s390x-linux-gnu):
 *   s390x-linux-gnu-gcc -g -O0 -c tests/data/types_mock.c -o tests/data/types_mock.o
 *   s390x-linux-gnu-gcc -gdwarf-2 -gstrict-dwarf -O0 -c tests/data/types_mock.c \
 *       -o tests/data/types_mock_dwarf2.o
 * Print the expected offsets (asm-offsets style, read from the assembler output):
 *   s390x-linux-gnu-gcc -DPRINT_OFFSETS -S -o - tests/data/types_mock.c | grep '^->'
 */
#include <stddef.h>

typedef unsigned char u8;
typedef unsigned int u32;
typedef int s32;
typedef unsigned long u64;

struct list_head {
	struct list_head *next, *prev;
};

struct thread_struct {
	u32 acrs[16];
	u64 ksp;
	u64 user_timer;
	u64 system_timer;
};
typedef struct thread_struct thread_struct_t;

struct thread_info {
	u64 flags;
	u64 syscall_work;
};

struct ftrace_ret_stack {
	u64 ret;
	u64 func;
	unsigned long long calltime;
	u64 fp;
	u64 *retp;
};

struct signal_struct {
	int sigcnt;
	int nr_threads;
	struct list_head thread_head;
};

struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	void *stack;
	int usage;
	unsigned int flags;
	union {
		struct {
			int on_cpu;
			unsigned int cpu;
		};
		u64 cpu_word;
	};
	unsigned sched_reset_on_fork:1;
	unsigned sched_contributes_to_load:1;
	struct list_head tasks;
	int exit_state;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct list_head thread_node;
	struct signal_struct *signal;
	char comm[16];
	int curr_ret_stack;
	struct ftrace_ret_stack *ret_stack;
	struct {
		void *first;
	} kretprobe_instances;
	volatile thread_struct_t thread;
};

union thread_union {
	struct task_struct task;
	unsigned long stack[2048];
};

typedef struct {
	u64 mask;
	u64 addr;
} __attribute__((aligned(8))) psw_t;

struct tpi_info {
	u32 word[3];
};

struct pt_regs {
	union {
		struct {
			u64 args[1];
			psw_t psw;
			u64 gprs[16];
		};
	};
	u64 orig_gpr2;
	union {
		struct {
			u32 int_code;
			u32 int_parm;
			u64 int_parm_long;
		};
		struct tpi_info tpi_info;
	};
	u64 flags;
	u64 cr1;
	u64 last_break;
};

struct stack_frame {
	union {
		u64 empty[9];
		struct {
			u64 sie_control_block;
			u64 sie_savearea;
			u64 sie_reason;
			u64 sie_flags;
			u64 sie_control_block_phys;
		};
	};
	u64 gprs[10];
	u64 back_chain;
};

struct lowcore {
	u8 pad_0x0000[0x0340];
	u64 current_task;		/* 0x0340 */
	u64 kernel_stack;		/* 0x0348 */
	u64 async_stack;		/* 0x0350 */
	u64 nodat_stack;		/* 0x0358 */
	u64 restart_stack;		/* 0x0360 */
	u64 mcck_stack;			/* 0x0368 */
	u64 restart_fn;			/* 0x0370 */
	u64 restart_data;		/* 0x0378 */
	u32 restart_source;		/* 0x0380 */
	u32 restart_flags;		/* 0x0384 */
	u64 kernel_asce;		/* 0x0388 */
	u64 user_asce;			/* 0x0390 */
	u32 lpp;			/* 0x0398 */
	u32 current_pid;		/* 0x039c */
	u32 cpu_nr;			/* 0x03a0 */
	u32 softirq_pending;		/* 0x03a4 */
	s32 preempt_count;		/* 0x03a8 */
	u32 spinlock_lockval;		/* 0x03ac */
	u32 spinlock_index;		/* 0x03b0 */
	u32 fpu_flags;			/* 0x03b4 */
	u64 percpu_offset;		/* 0x03b8 */
	u8 pad_0x03c0[0x0e0c - 0x03c0];
	u64 vmcore_info;		/* 0x0e0c */
	u8 pad_0x0e14[0x0e18 - 0x0e14];
	u64 os_info;			/* 0x0e18 */
	u8 pad_0x0e20[0x2000 - 0x0e20];
} __attribute__((packed, aligned(8192)));

/* A banner and a build-id note, as a linked vmlinux has them. */
const char linux_banner[] = "Linux version 6.1.0-mock-s390x (test@example) (gcc) #1 SMP\n";
asm(".pushsection .note.gnu.build-id,\"a\",@note\n"
    ".balign 4\n.long 4\n.long 8\n.long 3\n.asciz \"GNU\"\n"
    ".byte 0xba,0xc4,0xc1,0xa1,0x00,0x00,0x00,0x01\n.popsection\n");

/* Pointers make the compiler emit the complete definitions without allocating them. */
struct task_struct *mock_current;
union thread_union *mock_thread_union;
struct pt_regs *mock_regs;
struct stack_frame *mock_frame;
struct lowcore *mock_lowcore;

#ifdef PRINT_OFFSETS
#define OFFSET(name, type, member) \
	asm volatile("\n->" name " %0" : : "i"(offsetof(type, member)))
#define SIZE(name, type) asm volatile("\n->size:" name " %0" : : "i"(sizeof(type)))

void print_offsets(void)
{
	OFFSET("task_struct.thread_info.flags", struct task_struct, thread_info.flags);
	OFFSET("task_struct.__state", struct task_struct, __state);
	OFFSET("task_struct.stack", struct task_struct, stack);
	OFFSET("task_struct.flags", struct task_struct, flags);
	OFFSET("task_struct.on_cpu", struct task_struct, on_cpu);
	OFFSET("task_struct.cpu", struct task_struct, cpu);
	OFFSET("task_struct.cpu_word", struct task_struct, cpu_word);
	OFFSET("task_struct.tasks", struct task_struct, tasks);
	OFFSET("task_struct.exit_state", struct task_struct, exit_state);
	OFFSET("task_struct.pid", struct task_struct, pid);
	OFFSET("task_struct.tgid", struct task_struct, tgid);
	OFFSET("task_struct.real_parent", struct task_struct, real_parent);
	OFFSET("task_struct.thread_node", struct task_struct, thread_node);
	OFFSET("task_struct.signal", struct task_struct, signal);
	OFFSET("task_struct.comm", struct task_struct, comm);
	OFFSET("task_struct.curr_ret_stack", struct task_struct, curr_ret_stack);
	OFFSET("task_struct.ret_stack", struct task_struct, ret_stack);
	OFFSET("task_struct.kretprobe_instances", struct task_struct, kretprobe_instances);
	OFFSET("task_struct.thread", struct task_struct, thread);
	OFFSET("task_struct.thread.ksp", struct task_struct, thread.ksp);
	OFFSET("signal_struct.thread_head", struct signal_struct, thread_head);
	OFFSET("pt_regs.psw", struct pt_regs, psw);
	OFFSET("pt_regs.gprs", struct pt_regs, gprs);
	OFFSET("pt_regs.int_code", struct pt_regs, int_code);
	OFFSET("pt_regs.flags", struct pt_regs, flags);
	OFFSET("pt_regs.last_break", struct pt_regs, last_break);
	OFFSET("stack_frame.gprs", struct stack_frame, gprs);
	OFFSET("stack_frame.back_chain", struct stack_frame, back_chain);
	OFFSET("stack_frame.sie_flags", struct stack_frame, sie_flags);
	OFFSET("lowcore.current_task", struct lowcore, current_task);
	OFFSET("lowcore.preempt_count", struct lowcore, preempt_count);
	OFFSET("lowcore.percpu_offset", struct lowcore, percpu_offset);
	OFFSET("lowcore.vmcore_info", struct lowcore, vmcore_info);
	OFFSET("lowcore.os_info", struct lowcore, os_info);
	SIZE("task_struct", struct task_struct);
	SIZE("thread_union", union thread_union);
	SIZE("pt_regs", struct pt_regs);
	SIZE("stack_frame", struct stack_frame);
	SIZE("lowcore", struct lowcore);
	SIZE("ftrace_ret_stack", struct ftrace_ret_stack);
}
#endif
