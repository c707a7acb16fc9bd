// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: module entry, the /dev/xpmem misc device and its ioctl entry points,
 * and the /proc/xpmem files.
 */
#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "xpmem_private.h"

struct xpmem_stats xpmem_stats;

static long xpmem_ioctl_make(struct xpmem_proc *proc, void __user *uarg)
{
	struct xpmem_cmd_make cmd;
	u64 size;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.permit_type != XPMEM_IOCTL_PERMIT_MODE ||
	    cmd.permit_value & ~(u64)0777 || !PAGE_ALIGNED(cmd.vaddr) ||
	    cmd.vaddr >= TASK_SIZE)
		return -EINVAL;
	size = cmd.size;
	/* The whole-address-space export used by MPI transports: (size_t)-1. */
	if (size == XPMEM_IOCTL_MAXADDR_SIZE ||
	    (in_compat_syscall() && size == U32_MAX))
		size = TASK_SIZE - cmd.vaddr;
	if (!size || !PAGE_ALIGNED(size) || size > TASK_SIZE - cmd.vaddr)
		return -EINVAL;

	ret = xpmem_make(proc, cmd.vaddr, size, cmd.permit_value, &cmd.segid);
	if (ret)
		return ret;
	if (put_user(cmd.segid,
		     &((struct xpmem_cmd_make __user *)uarg)->segid)) {
		xpmem_remove(proc, cmd.segid);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioctl_get(struct xpmem_proc *proc, void __user *uarg)
{
	struct xpmem_cmd_get cmd;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	/* flags 0 is refused: it must never yield a writable mapping. */
	if ((cmd.flags != XPMEM_IOCTL_RDONLY &&
	     cmd.flags != XPMEM_IOCTL_RDWR) ||
	    cmd.permit_type != XPMEM_IOCTL_PERMIT_MODE || cmd.permit_value)
		return -EINVAL;
	if (cmd.segid <= 0)
		return -ENOENT;

	ret = xpmem_get(proc, cmd.segid, cmd.flags, &cmd.apid);
	if (ret)
		return ret;
	if (put_user(cmd.apid, &((struct xpmem_cmd_get __user *)uarg)->apid)) {
		xpmem_release(proc, cmd.apid);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioctl_attach(struct xpmem_proc *proc, void __user *uarg)
{
	struct xpmem_cmd_attach cmd;
	int ret;

	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.apid <= 0)
		return -ENOENT;
	/* cmd.fd is documented as unused: the existing library sends its own fd. */
	ret = xpmem_attach(proc, cmd.apid, cmd.offset, cmd.size, &cmd.vaddr,
			   cmd.flags, false);
	if (ret)
		return ret;
	if (put_user(cmd.vaddr,
		     &((struct xpmem_cmd_attach __user *)uarg)->vaddr)) {
		xpmem_detach(cmd.vaddr);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioctl_attach_ext(struct xpmem_proc *proc, void __user *uarg)
{
	struct xpmem_cmd_attach_ext cmd;
	u32 argsz;
	int ret;

	if (get_user(argsz, (u32 __user *)uarg))
		return -EFAULT;
	if (argsz < sizeof(cmd))
		return -EINVAL;
	/* A newer caller's extra fields must be zero: we would ignore them. */
	ret = copy_struct_from_user(&cmd, sizeof(cmd), uarg, argsz);
	if (ret)
		return ret == -E2BIG ? -EINVAL : ret;
	if (cmd.flags & ~XPMEM_IOCTL_ATTACH_FLAGS_ALL)
		return -EINVAL;
	if (cmd.apid <= 0)
		return -ENOENT;
	ret = xpmem_attach(proc, cmd.apid, cmd.offset, cmd.size, &cmd.vaddr, 0,
			   cmd.flags & XPMEM_IOCTL_ATTACH_PREFAULT);
	if (ret)
		return ret;
	if (put_user(cmd.vaddr,
		     &((struct xpmem_cmd_attach_ext __user *)uarg)->vaddr)) {
		xpmem_detach(cmd.vaddr);
		return -EFAULT;
	}
	return 0;
}

static long xpmem_ioctl_ping(void __user *uarg)
{
	struct xpmem_cmd_ping cmd;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	ret = xpmem_fabric_ping(cmd.node, cmd.size, &cmd.rtt_ns);
	if (!ret && copy_to_user(uarg, &cmd, sizeof(cmd)))
		ret = -EFAULT;
	return ret;
}

static long xpmem_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct xpmem_proc *proc;
	s64 id;
	long ret;

	switch (cmd) {
	case XPMEM_CMD_VERSION:
		return XPMEM_INTERFACE_VERSION;
	case XPMEM_CMD_FORK_BEGIN:
	case XPMEM_CMD_FORK_END:
		/*
		 * Old libraries bracket fork() with these. Attachments are VM_DONTCOPY
		 * and state is per address space, so fork needs no help.
		 */
		return 0;
	case XPMEM_CMD_QUERY:
		return xpmem_query(uarg);
	case XPMEM_CMD_PING:
		return xpmem_ioctl_ping(uarg);
	case XPMEM_CMD_DETACH: {
		u64 vaddr;

		if (get_user(vaddr,
			     &((struct xpmem_cmd_detach __user *)uarg)->vaddr))
			return -EFAULT;
		ret = xpmem_detach(vaddr);
		return ret;
	}
	case XPMEM_CMD_MAKE:
	case XPMEM_CMD_REMOVE:
	case XPMEM_CMD_GET:
	case XPMEM_CMD_RELEASE:
	case XPMEM_CMD_ATTACH:
	case XPMEM_CMD_ATTACH_EXT:
		break;
	default:
		return -ENOTTY;
	}

	proc = xpmem_proc_current();
	if (IS_ERR(proc))
		return PTR_ERR(proc);
	switch (cmd) {
	case XPMEM_CMD_MAKE:
		ret = xpmem_ioctl_make(proc, uarg);
		break;
	case XPMEM_CMD_GET:
		ret = xpmem_ioctl_get(proc, uarg);
		break;
	case XPMEM_CMD_ATTACH:
		ret = xpmem_ioctl_attach(proc, uarg);
		break;
	case XPMEM_CMD_ATTACH_EXT:
		ret = xpmem_ioctl_attach_ext(proc, uarg);
		break;
	case XPMEM_CMD_REMOVE:
	case XPMEM_CMD_RELEASE:
		/* Both take a single id at offset 0. */
		if (get_user(id, (s64 __user *)uarg)) {
			ret = -EFAULT;
			break;
		}
		if (id <= 0)
			ret = -ENOENT;
		else if (cmd == XPMEM_CMD_REMOVE)
			ret = xpmem_remove(proc, id);
		else
			ret = xpmem_release(proc, id);
		break;
	default:
		ret = -ENOTTY;
	}
	xpmem_proc_put(proc);
	return ret;
}

static const struct file_operations xpmem_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = xpmem_ioctl,
	/* The argument structs use fixed-width fields laid out alike for 32-bit callers. */
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice xpmem_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "xpmem",
	.fops = &xpmem_fops,
	.mode = 0666,
};

/* The existing module's format: only pages granted to other fabric nodes are pinned. */
static int xpmem_global_pages_show(struct seq_file *m, void *v)
{
	seq_printf(m, "all pages pinned by XPMEM: %lld\n",
		   (long long)atomic64_read(&xpmem_stats.pinned_total));
	seq_printf(m, "all pages unpinned by XPMEM: %lld\n",
		   (long long)atomic64_read(&xpmem_stats.unpinned));
	return 0;
}

static int xpmem_stats_show(struct seq_file *m, void *v)
{
#define XPMEM_SHOW(name)               \
	seq_printf(m, #name " %lld\n", \
		   (long long)atomic64_read(&xpmem_stats.name))
	XPMEM_SHOW(segments_live);
	XPMEM_SHOW(accesses_live);
	XPMEM_SHOW(attachments_live);
	XPMEM_SHOW(makes);
	XPMEM_SHOW(removes);
	XPMEM_SHOW(gets);
	XPMEM_SHOW(releases);
	XPMEM_SHOW(attaches);
	XPMEM_SHOW(detaches);
	XPMEM_SHOW(faults);
	XPMEM_SHOW(fault_retries);
	XPMEM_SHOW(huge_faults);
	XPMEM_SHOW(recalls);
#undef XPMEM_SHOW
	/* Named as in XPMEM_QUERY_STATS records. */
	seq_printf(m, "pinned_pages %lld\n",
		   (long long)atomic64_read(&xpmem_stats.pinned));
	return 0;
}

static struct proc_dir_entry *xpmem_proc_dir;

static int __init xpmem_init(void)
{
	int ret;

	ret = xpmem_tables_init();
	if (ret)
		return ret;
	ret = xpmem_fs_init();
	if (ret)
		goto err_tables;
	ret = -ENOMEM;
	xpmem_proc_dir = proc_mkdir("xpmem", NULL);
	if (!xpmem_proc_dir ||
	    !proc_create_single("global_pages", 0444, xpmem_proc_dir,
				xpmem_global_pages_show) ||
	    !proc_create_single("stats", 0444, xpmem_proc_dir,
				xpmem_stats_show))
		goto err_proc;
	ret = xpmem_fabric_init();
	if (ret)
		goto err_proc;
	/* Last: once /dev/xpmem can be opened, init must not fail any more. */
	ret = misc_register(&xpmem_miscdev);
	if (ret)
		goto err_fabric;
	return 0;

err_fabric:
	xpmem_fabric_exit();
err_proc:
	proc_remove(xpmem_proc_dir);
	xpmem_fs_exit();
err_tables:
	xpmem_tables_exit();
	return ret;
}

static void __exit xpmem_exit(void)
{
	misc_deregister(&xpmem_miscdev);
	xpmem_fabric_exit();
	proc_remove(xpmem_proc_dir);
	xpmem_tables_exit();
	xpmem_fs_exit();
}

module_init(xpmem_init);
module_exit(xpmem_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Cross-process and cross-host memory export (XPMEM)");
MODULE_VERSION(XPMEM_VERSION_STRING);
