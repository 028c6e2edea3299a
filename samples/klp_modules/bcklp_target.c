// SPDX-License-Identifier: GPL-2.0
/*
 * backchain livepatch sample: the target module.
 *
 * At load it starts the kernel thread "bcklp_old", which calls bcklp_sleep_func() and sleeps
 * inside it for as long as the parameter "block" is set.  Writing 1 to the write-only
 * parameter "start_new" starts a second thread, "bcklp_new", which calls the same function:
 * once bcklp_patch has switched kthreadd, the new thread inherits the patched state and the
 * ftrace handler sends it into the livepatch's replacement, where it sleeps too.  Reversing
 * the transition then stalls on "bcklp_new" (sleeping in the new code), the case that
 * samples/build_kernel_livepatch.py dumps.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>

static bool block = true;
module_param(block, bool, 0644);
MODULE_PARM_DESC(block, "keep the threads sleeping in bcklp_sleep_func (default: Y)");

static struct task_struct *old_thread;
static struct task_struct *new_thread;

int bcklp_sleep_func(const char *who);

/* Global, so that the compiler neither inlines nor clones it: the livepatch names it. */
noinline int bcklp_sleep_func(const char *who)
{
	pr_info("%s: %s enters the original function\n", __func__, who);
	while (READ_ONCE(block) && !kthread_should_stop())
		msleep_interruptible(100);
	pr_info("%s: %s leaves the original function\n", __func__, who);
	return 0;
}

static int bcklp_thread(void *data)
{
	bcklp_sleep_func(data);
	while (!kthread_should_stop())
		msleep_interruptible(100);
	return 0;
}

static int start_new_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;

	if (new_thread)
		return -EBUSY;
	t = kthread_run(bcklp_thread, "bcklp_new", "bcklp_new");
	if (IS_ERR(t))
		return PTR_ERR(t);
	new_thread = t;
	return 0;
}

static const struct kernel_param_ops start_new_ops = {
	.set = start_new_set,
};
module_param_cb(start_new, &start_new_ops, NULL, 0200);
MODULE_PARM_DESC(start_new, "write anything: start the thread bcklp_new");

static int __init bcklp_target_init(void)
{
	old_thread = kthread_run(bcklp_thread, "bcklp_old", "bcklp_old");
	return PTR_ERR_OR_ZERO(old_thread);
}

static void __exit bcklp_target_exit(void)
{
	WRITE_ONCE(block, false);
	if (new_thread)
		kthread_stop(new_thread);
	kthread_stop(old_thread);
}

module_init(bcklp_target_init);
module_exit(bcklp_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("backchain livepatch sample: a target function that sleeps");
