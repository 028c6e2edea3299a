// SPDX-License-Identifier: GPL-2.0
/*
 * backchain livepatch sample: the livepatch.  It replaces bcklp_target's bcklp_sleep_func()
 * with a function that also sleeps (uninterruptibly) while the target's "block" parameter is
 * set, so that a task can hold the old code and another the new code at the same time.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/module.h>

static bool block = true;
module_param(block, bool, 0644);
MODULE_PARM_DESC(block, "keep tasks sleeping in the new function (default: Y)");

static int livepatch_bcklp_sleep_func(const char *who)
{
	pr_info("%s: %s enters the new function\n", __func__, who);
	while (READ_ONCE(block) && !kthread_should_stop())
		msleep(100);
	pr_info("%s: %s leaves the new function\n", __func__, who);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "bcklp_sleep_func",
		.new_func = livepatch_bcklp_sleep_func,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "bcklp_target",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init bcklp_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit bcklp_patch_exit(void)
{
}

module_init(bcklp_patch_init);
module_exit(bcklp_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("backchain livepatch sample: a replacement that sleeps too");
