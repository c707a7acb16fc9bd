// SPDX-License-Identifier: GPL-2.0
/*
 * xpmem: the fabric side of a node. Its identity and beacon, the windows onto
 * peers' memory (each proven by reading the peer's beacon through it), the
 * peers' states as the daemon reports them, and the request channel to other
 * nodes' kernels through the daemon on /dev/xpmem-fabric (include/xpmem_fabric.h).
 */
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "xpmem_fabric.h"
#include "xpmem_private.h"

struct xpmem_fabric_peer {
	u32 node;
	u32 state; /* enum xpmem_fabric_node_state */
	u64 epoch;
	u64 heartbeat_at_ns; /* ktime_get_ns() when its last heartbeat arrived */
	u64 rtt_ns;
	u64 rejected;
	bool window; /* proven for epoch */
	bool fenced; /* dead and cut off from this node's memory */
	u64 window_phys;
	u64 window_size;
	u64 below_4g;
	u64 requests; /* sent to it */
	u64 failures; /* of those, failed or given up */
	u64 served; /* requests from it answered here */
	struct xpmem_fabric_idmap idmap[2]; /* by XPMEM_IDMAP_UID / _GID */
};

/* A request to another node's kernel, owned by its caller (xpmem_fabric_call). */
struct xpmem_fabric_req {
	u32 id;
	u32 node;
	struct list_head queue; /* in fab.queue until the daemon reads it */
	struct completion done;
	bool detached; /* nobody waits: finishing frees it */
	struct xpmem_fabric_msg *msg; /* the request, then the answer */
};

/* A request from another node being served, then its answer waiting for read(). */
struct xpmem_fabric_job {
	struct work_struct work;
	struct list_head queue; /* in fab.answers once answered */
	struct xpmem_fabric_msg msg;
};

/* Requests from other nodes served at once; more get -EBUSY. */
#define XPMEM_FABRIC_MAX_JOBS 256

static struct {
	struct mutex lock; /* everything below */
	u32 self; /* 0 until the daemon first joins */
	u64 epoch;
	struct page *beacon;
	struct file *daemon; /* the one open of the device */
	bool closing; /* the last daemon's state is still being dropped */
	struct list_head queue;
	struct list_head answers; /* jobs answered, for the daemon to send */
	unsigned int jobs; /* being served or answered */
	struct xarray reqs; /* id -> request, until answered or given up */
	u32 next_id;
	struct xarray peers; /* node -> struct xpmem_fabric_peer */
} fab = {
	.lock = __MUTEX_INITIALIZER(fab.lock),
	.queue = LIST_HEAD_INIT(fab.queue),
	.answers = LIST_HEAD_INIT(fab.answers),
	.reqs = XARRAY_INIT(fab.reqs, XA_FLAGS_ALLOC1),
	.peers = XARRAY_INIT(fab.peers, 0),
};

static DECLARE_WAIT_QUEUE_HEAD(xpmem_fabric_readers);
static struct workqueue_struct *xpmem_fabric_wq;

u32 xpmem_fabric_self(void)
{
	return READ_ONCE(fab.self);
}

static bool xpmem_fabric_node_valid(u32 node)
{
	return node >= 1 && node <= XPMEM_FABRIC_MAX_NODE;
}

static struct xpmem_fabric_req *xpmem_fabric_req_alloc(u32 node, gfp_t gfp)
{
	struct xpmem_fabric_req *req = kzalloc(sizeof(*req), gfp);

	if (!req)
		return NULL;
	req->msg = kmalloc(sizeof(*req->msg), gfp);
	if (!req->msg) {
		kfree(req);
		return NULL;
	}
	init_completion(&req->done);
	INIT_LIST_HEAD(&req->queue);
	req->node = node;
	return req;
}

static void xpmem_fabric_req_free(struct xpmem_fabric_req *req)
{
	kfree(req->msg);
	kfree(req);
}

/* Ends a request with status (and, when answer is given, its payload). Under fab.lock. */
static void xpmem_fabric_finish(struct xpmem_fabric_req *req, int status,
				const struct xpmem_fabric_msg *answer)
{
	struct xpmem_fabric_peer *peer = xa_load(&fab.peers, req->node);

	xa_erase(&fab.reqs, req->id);
	if (!list_empty(&req->queue))
		list_del_init(&req->queue);
	req->msg->status = status;
	req->msg->len = 0;
	if (answer && !status) {
		req->msg->len = answer->len;
		memcpy(req->msg->payload, answer->payload, answer->len);
	}
	if (peer && status)
		peer->failures++;
	if (req->detached)
		xpmem_fabric_req_free(req);
	else
		complete(&req->done);
}

/* Fails every pending request (to node, or to any node when node is 0). Under fab.lock. */
static void xpmem_fabric_fail_pending(u32 node, int status)
{
	struct xpmem_fabric_req *req;
	unsigned long id;

	xa_for_each(&fab.reqs, id, req)
		if (!node || req->node == node)
			xpmem_fabric_finish(req, status, NULL);
}

/*
 * Queues a request of type with payload for node's kernel. Returns the request
 * (to wait for with xpmem_fabric_wait()), or ERR_PTR(-ENOTCONN) when no daemon
 * runs here, -EHOSTUNREACH when node is not up, -ENOMEM.
 */
struct xpmem_fabric_req *xpmem_fabric_submit(u32 node, u32 type,
					     const void *payload, u32 len,
					     gfp_t gfp)
{
	struct xpmem_fabric_peer *peer;
	struct xpmem_fabric_req *req;
	int ret;

	if (len > XPMEM_FABRIC_PAYLOAD_MAX)
		return ERR_PTR(-EINVAL);
	req = xpmem_fabric_req_alloc(node, gfp);
	if (!req)
		return ERR_PTR(-ENOMEM);

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, node);
	if (!fab.daemon)
		ret = -ENOTCONN;
	else if (!peer || (peer->state != XPMEM_NODE_UP &&
			   peer->state != XPMEM_NODE_SUSPECT))
		ret = -EHOSTUNREACH;
	else
		ret = xa_alloc_cyclic(&fab.reqs, &req->id, req, xa_limit_32b,
				      &fab.next_id, GFP_NOWAIT | __GFP_NOWARN);
	if (ret < 0) {
		mutex_unlock(&fab.lock);
		xpmem_fabric_req_free(req);
		return ERR_PTR(ret);
	}
	req->msg->id = req->id;
	req->msg->node = node;
	req->msg->type = type;
	req->msg->epoch = peer->epoch;
	req->msg->status = 0;
	req->msg->len = len;
	memcpy(req->msg->payload, payload, len);
	list_add_tail(&req->queue, &fab.queue);
	peer->requests++;
	mutex_unlock(&fab.lock);
	wake_up_interruptible(&xpmem_fabric_readers);
	return req;
}

/*
 * Waits up to timeout jiffies for the answer to req and frees it: at most
 * *answer_len bytes are copied to answer, and *answer_len is set to what
 * arrived. Returns the remote status, or -ENOTCONN (the daemon left),
 * -EHOSTUNREACH or -EHOSTDOWN (node gone), -ETIMEDOUT, -EINTR (fatal signal).
 */
int xpmem_fabric_wait(struct xpmem_fabric_req *req, void *answer,
		      u32 *answer_len, unsigned long timeout, bool killable)
{
	long left;
	int ret;

	left = killable ?
		wait_for_completion_killable_timeout(&req->done, timeout) :
		wait_for_completion_timeout(&req->done, timeout);
	mutex_lock(&fab.lock);
	/* Still pending: nobody answered in time; an answer after this finds no request. */
	if (xa_load(&fab.reqs, req->id) == req)
		xpmem_fabric_finish(req, left < 0 ? -EINTR : -ETIMEDOUT, NULL);
	mutex_unlock(&fab.lock);

	ret = req->msg->status;
	if (!ret && answer_len) {
		memcpy(answer, req->msg->payload,
		       min(*answer_len, req->msg->len));
		*answer_len = req->msg->len;
	}
	xpmem_fabric_req_free(req);
	return ret;
}

/* Submit and wait (see both). */
int xpmem_fabric_call(u32 node, u32 type, const void *payload, u32 len,
		      void *answer, u32 *answer_len, unsigned long timeout)
{
	struct xpmem_fabric_req *req;

	req = xpmem_fabric_submit(node, type, payload, len, GFP_KERNEL);
	if (IS_ERR(req))
		return PTR_ERR(req);
	return xpmem_fabric_wait(req, answer, answer_len, timeout, true);
}

/* A request nobody waits for: its answer, or its failure, only frees it. */
void xpmem_fabric_post(u32 node, u32 type, const void *payload, u32 len)
{
	struct xpmem_fabric_req *req;

	req = xpmem_fabric_submit(node, type, payload, len, GFP_KERNEL);
	if (IS_ERR(req))
		return;
	mutex_lock(&fab.lock);
	if (xa_load(&fab.reqs, req->id) == req)
		req->detached = true;
	else
		xpmem_fabric_req_free(req); /* already failed */
	mutex_unlock(&fab.lock);
}

/* Where peer physical address P lies in a window onto the peer's RAM file. */
static bool xpmem_fabric_window_offset(u64 below_4g, u64 phys, u64 *offset)
{
	if (!below_4g || phys < below_4g) {
		*offset = phys;
		return true;
	}
	if (phys < SZ_4G)
		return false; /* the PCI hole: no RAM there */
	*offset = phys - SZ_4G + below_4g;
	return true;
}

/* The local pfn through which node's page at physical address phys is reached. */
int xpmem_fabric_window_pfn(u32 node, u64 epoch, u64 phys, unsigned long *pfn)
{
	struct xpmem_fabric_peer *peer;
	int ret = -EHOSTUNREACH;
	u64 off;

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, node);
	if (peer && peer->window && peer->epoch == epoch &&
	    peer->state != XPMEM_NODE_DEAD) {
		ret = -EFAULT;
		if (xpmem_fabric_window_offset(peer->below_4g, phys, &off) &&
		    off < peer->window_size) {
			*pfn = PHYS_PFN(peer->window_phys + off);
			ret = 0;
		}
	}
	mutex_unlock(&fab.lock);
	return ret;
}

/* Whether node's window maps its 2 MiB-aligned memory 2 MiB-aligned here. */
bool xpmem_fabric_window_huge(u32 node, u64 epoch)
{
	struct xpmem_fabric_peer *peer;
	bool ret;

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, node);
	ret = peer && peer->window && peer->epoch == epoch &&
	      IS_ALIGNED(peer->window_phys, PMD_SIZE) &&
	      IS_ALIGNED(peer->below_4g, PMD_SIZE);
	mutex_unlock(&fab.lock);
	return ret;
}

/* The epoch node is known by now, 0 if none. */
u64 xpmem_fabric_epoch(u32 node)
{
	struct xpmem_fabric_peer *peer;
	u64 epoch = 0;

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, node);
	if (peer)
		epoch = peer->epoch;
	mutex_unlock(&fab.lock);
	return epoch;
}

/* XPMEM_CMD_PING: a kernel-to-kernel round trip through both daemons. */
int xpmem_fabric_ping(u32 node, u32 size, u64 *rtt_ns)
{
	u32 answer_len = size;
	u8 *out, *in;
	ktime_t t0;
	int ret;

	if (!xpmem_fabric_node_valid(node) || size > XPMEM_FABRIC_PAYLOAD_MAX)
		return -EINVAL;
	if (node == xpmem_fabric_self())
		return -EINVAL;
	out = kmalloc(size + 1, GFP_KERNEL);
	in = kmalloc(size + 1, GFP_KERNEL);
	ret = -ENOMEM;
	if (!out || !in)
		goto out;
	get_random_bytes(out, size);
	t0 = ktime_get();
	ret = xpmem_fabric_call(node, XPMEM_FMSG_PING, out, size, in,
				&answer_len, 5 * HZ);
	*rtt_ns = ktime_to_ns(ktime_sub(ktime_get(), t0));
	/* The echo must come back whole: anything else is a broken path. */
	if (!ret && (answer_len != size || memcmp(in, out, size)))
		ret = -EIO;
out:
	kfree(out);
	kfree(in);
	return ret;
}

static int xpmem_fabric_open(struct inode *inode, struct file *file)
{
	int ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	mutex_lock(&fab.lock);
	if (fab.daemon || fab.closing)
		ret = -EBUSY;
	else
		fab.daemon = file;
	mutex_unlock(&fab.lock);
	if (ret)
		return ret;
	return nonseekable_open(inode, file);
}

/* The daemon is gone: nothing can reach other nodes until it is back. */
static int xpmem_fabric_release(struct inode *inode, struct file *file)
{
	struct xpmem_fabric_peer *peer;
	unsigned long node;

	struct xpmem_fabric_job *job, *next;

	mutex_lock(&fab.lock);
	fab.daemon = NULL;
	fab.closing = true;
	xpmem_fabric_fail_pending(0, -ENOTCONN);
	list_for_each_entry_safe(job, next, &fab.answers, queue) {
		list_del(&job->queue);
		fab.jobs--;
		kfree(job);
	}
	xa_for_each(&fab.peers, node, peer) {
		peer->state = XPMEM_NODE_UNKNOWN;
		peer->window = false;
		/* The next daemon sets the maps its configuration has now. */
		memset(peer->idmap, 0, sizeof(peer->idmap));
	}
	mutex_unlock(&fab.lock);
	/*
	 * No recall can reach this node now: drop what it maps of other nodes,
	 * before a new daemon can join (its new epoch would let exporters reuse
	 * those pages).
	 */
	xpmem_remote_disconnected();
	mutex_lock(&fab.lock);
	fab.closing = false;
	mutex_unlock(&fab.lock);
	return 0;
}

static bool xpmem_fabric_readable(void)
{
	return !list_empty_careful(&fab.queue) ||
	       !list_empty_careful(&fab.answers);
}

static ssize_t xpmem_fabric_read(struct file *file, char __user *buf,
				 size_t count, loff_t *ppos)
{
	struct xpmem_fabric_job *job;
	struct xpmem_fabric_req *req;
	struct xpmem_fabric_msg *msg;
	size_t n;
	int ret;

	if (count < sizeof(*msg))
		return -EINVAL;
	/* Copied out of the lock: a fault on buf must not wait behind fab.lock holders. */
	msg = kmalloc(sizeof(*msg), GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	for (;;) {
		mutex_lock(&fab.lock);
		/* Answers first: other nodes' callers wait for them. */
		job = list_first_entry_or_null(&fab.answers,
					       struct xpmem_fabric_job, queue);
		req = list_first_entry_or_null(&fab.queue,
					       struct xpmem_fabric_req, queue);
		if (job || req)
			break;
		mutex_unlock(&fab.lock);
		ret = -EAGAIN;
		if (file->f_flags & O_NONBLOCK)
			goto out;
		ret = wait_event_interruptible(xpmem_fabric_readers,
					       xpmem_fabric_readable());
		if (ret)
			goto out;
	}
	if (job) {
		list_del(&job->queue);
		mutex_unlock(&fab.lock);
		n = XPMEM_FABRIC_MSG_HDR_LEN + job->msg.len;
		if (!copy_to_user(buf, &job->msg, n)) {
			mutex_lock(&fab.lock);
			fab.jobs--;
			mutex_unlock(&fab.lock);
			kfree(job);
			ret = n;
			goto out;
		}
		/* Still owed to the asker: the next read sends it. */
		mutex_lock(&fab.lock);
		if (fab.daemon) {
			list_add(&job->queue, &fab.answers);
			job = NULL;
		} else {
			fab.jobs--;
		}
		mutex_unlock(&fab.lock);
		kfree(job);
		ret = -EFAULT;
		goto out;
	}
	list_del_init(&req->queue);
	n = XPMEM_FABRIC_MSG_HDR_LEN + req->msg->len;
	memcpy(msg, req->msg, n);
	mutex_unlock(&fab.lock);

	ret = n;
	if (copy_to_user(buf, msg, n)) {
		ret = -EFAULT;
		mutex_lock(&fab.lock);
		req = xa_load(&fab.reqs, msg->id);
		if (req && req->node == msg->node)
			xpmem_fabric_finish(req, -EIO, NULL);
		mutex_unlock(&fab.lock);
	}
out:
	kfree(msg);
	return ret;
}

static __poll_t xpmem_fabric_poll(struct file *file, poll_table *wait)
{
	poll_wait(file, &xpmem_fabric_readers, wait);
	return xpmem_fabric_readable() ? EPOLLIN | EPOLLRDNORM : 0;
}

static void xpmem_fabric_write_beacon(void)
{
	struct xpmem_fabric_beacon *b = kmap_local_page(fab.beacon);

	b->magic = XPMEM_BEACON_MAGIC;
	b->nonce = get_random_u64();
	b->epoch = fab.epoch;
	b->node = fab.self;
	b->pad = 0;
	kunmap_local(b);
}

static long xpmem_fabric_join(void __user *uarg)
{
	struct xpmem_fabric_join j;
	struct xpmem_fabric_beacon *b;
	struct page *spare;
	int ret = 0;

	if (copy_from_user(&j, uarg, sizeof(j)))
		return -EFAULT;
	if (!xpmem_fabric_node_valid(j.node) || j.pad || !j.epoch)
		return -EINVAL;
	/* Not under fab.lock: a recall in reclaim may need it. */
	spare = READ_ONCE(fab.beacon) ? NULL : alloc_page(GFP_KERNEL | __GFP_ZERO);
	mutex_lock(&fab.lock);
	if (fab.self && fab.self != j.node)
		ret = -EBUSY; /* segment ids already name the old node */
	else if (j.epoch <= fab.epoch)
		ret = -ESTALE;
	else if (!fab.beacon) {
		fab.beacon = spare;
		spare = NULL;
		if (!fab.beacon)
			ret = -ENOMEM;
	}
	if (!ret) {
		WRITE_ONCE(fab.self, j.node);
		fab.epoch = j.epoch;
		xpmem_fabric_write_beacon();
		b = kmap_local_page(fab.beacon);
		j.beacon_nonce = b->nonce;
		kunmap_local(b);
		j.beacon_phys = page_to_phys(fab.beacon);
	}
	mutex_unlock(&fab.lock);
	if (spare)
		__free_page(spare);
	if (!ret && copy_to_user(uarg, &j, sizeof(j)))
		ret = -EFAULT;
	return ret;
}

/*
 * The peer's record, created on first mention from *spare (allocated by the
 * caller before taking fab.lock, which a recall from reclaim may need: nothing
 * under it may wait for reclaim). Under fab.lock.
 */
static struct xpmem_fabric_peer *
xpmem_fabric_peer(u32 node, struct xpmem_fabric_peer **spare)
{
	struct xpmem_fabric_peer *peer = xa_load(&fab.peers, node);
	int ret;

	if (peer)
		return peer;
	if (!*spare)
		return ERR_PTR(-ENOMEM);
	ret = xa_insert(&fab.peers, node, *spare, GFP_NOWAIT | __GFP_NOWARN);
	if (ret)
		return ERR_PTR(ret);
	peer = *spare;
	*spare = NULL;
	peer->node = node;
	return peer;
}

/* A peer's new incarnation: nothing of the old one may be answered or trusted. Under fab.lock. */
static void xpmem_fabric_new_epoch(struct xpmem_fabric_peer *peer, u64 epoch)
{
	xpmem_fabric_fail_pending(peer->node, -EHOSTDOWN);
	peer->epoch = epoch;
	peer->window = false;
	peer->fenced = false;
	peer->rejected = 0;
	peer->rtt_ns = 0;
}

/*
 * Where windows may lie. A window handed out as a peer's memory must never be
 * our own RAM: by default only a PCI device's memory BAR qualifies (the
 * testbed's ivshmem); fabrics without one name their ranges at load time.
 */
static bool pci_windows = true;
module_param(pci_windows, bool, 0444);
MODULE_PARM_DESC(pci_windows, "Accept fabric windows inside PCI memory BARs");

#define XPMEM_STATIC_WINDOWS_MAX 16
static char *static_windows;
module_param(static_windows, charp, 0444);
MODULE_PARM_DESC(static_windows,
		 "Physical ranges, not system RAM, that may hold fabric windows: START+SIZE[,START+SIZE...]");

static struct {
	u64 start;
	u64 size;
} xpmem_static_windows[XPMEM_STATIC_WINDOWS_MAX];
static unsigned int xpmem_static_window_count;

/* Whether any of [start, start + size) is system RAM: never a window. */
static bool xpmem_fabric_overlaps_ram(u64 start, u64 size)
{
	return region_intersects(start, size, IORESOURCE_SYSTEM_RAM,
				 IORES_DESC_NONE) != REGION_DISJOINT;
}

static int xpmem_fabric_parse_static_windows(void)
{
	char *spec = static_windows, *item, *plus, *copy;
	u64 start, size;
	int ret = 0;

	if (!spec || !*spec)
		return 0;
	copy = kstrdup(spec, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	spec = copy;
	while ((item = strsep(&spec, ",")) && !ret) {
		plus = strchr(item, '+');
		ret = -EINVAL;
		if (!plus)
			break;
		*plus = '\0';
		if (kstrtou64(item, 0, &start) || kstrtou64(plus + 1, 0, &size) ||
		    !size || !PAGE_ALIGNED(start) || !PAGE_ALIGNED(size) ||
		    start + size < start ||
		    xpmem_static_window_count == XPMEM_STATIC_WINDOWS_MAX)
			break;
		if (xpmem_fabric_overlaps_ram(start, size)) {
			pr_err("xpmem: static window %#llx+%#llx overlaps system RAM\n",
			       start, size);
			break;
		}
		xpmem_static_windows[xpmem_static_window_count].start = start;
		xpmem_static_windows[xpmem_static_window_count++].size = size;
		ret = 0;
	}
	if (ret)
		pr_err("xpmem: static_windows: expected up to %d page-aligned START+SIZE ranges outside system RAM, got '%s'\n",
		       XPMEM_STATIC_WINDOWS_MAX, static_windows);
	kfree(copy);
	return ret;
}

static bool xpmem_fabric_in_static_window(u64 phys, u64 size)
{
	unsigned int i;

	for (i = 0; i < xpmem_static_window_count; i++)
		if (phys >= xpmem_static_windows[i].start &&
		    phys + size - xpmem_static_windows[i].start <=
			    xpmem_static_windows[i].size)
			return true;
	return false;
}

/* Whether [phys, phys + size) lies inside one assigned memory BAR of a PCI device. */
static bool xpmem_fabric_in_pci_bar(u64 phys, u64 size)
{
	struct pci_dev *pdev = NULL;
	int i;

	for_each_pci_dev(pdev) {
		for (i = 0; i < PCI_STD_NUM_BARS; i++) {
			struct resource *r = &pdev->resource[i];

			if ((r->flags & IORESOURCE_MEM) && !(r->flags & IORESOURCE_UNSET) &&
			    r->start && phys >= r->start && phys + size - 1 <= r->end) {
				pci_dev_put(pdev);
				return true;
			}
		}
	}
	return false;
}

static long xpmem_fabric_window(void __user *uarg)
{
	struct xpmem_fabric_window w;
	struct xpmem_fabric_beacon b;
	struct xpmem_fabric_peer *peer, *spare;
	bool restarted = false;
	unsigned long node;
	void __iomem *map;
	u64 off;
	int ret = 0;

	if (copy_from_user(&w, uarg, sizeof(w)))
		return -EFAULT;
	if (!xpmem_fabric_node_valid(w.node) || w.pad || !w.epoch ||
	    !w.size || !PAGE_ALIGNED(w.phys) || !PAGE_ALIGNED(w.size) ||
	    w.phys + w.size < w.phys || !PAGE_ALIGNED(w.beacon_phys) ||
	    !PAGE_ALIGNED(w.below_4g) || w.below_4g > SZ_4G ||
	    !xpmem_fabric_window_offset(w.below_4g, w.beacon_phys, &off) ||
	    off > w.size - PAGE_SIZE)
		return -EINVAL;
	/*
	 * Never our own RAM (its pages would be handed out as a peer's), never
	 * beyond the device.
	 */
	if ((!xpmem_fabric_in_static_window(w.phys, w.size) &&
	     !(pci_windows && xpmem_fabric_in_pci_bar(w.phys, w.size))) ||
	    xpmem_fabric_overlaps_ram(w.phys, w.size))
		return -EINVAL;
	if (!xpmem_fabric_self() || w.node == xpmem_fabric_self())
		return -EINVAL;

	/* Uncached: a line cached from an earlier proof must not answer this one. */
	map = ioremap(w.phys + off, sizeof(b));
	if (!map)
		return -ENXIO;
	memcpy_fromio(&b, map, sizeof(b));
	iounmap(map);
	if (b.magic != XPMEM_BEACON_MAGIC || b.node != w.node ||
	    b.epoch != w.epoch || b.nonce != w.beacon_nonce)
		return -EHOSTUNREACH;

	spare = kzalloc(sizeof(*spare), GFP_KERNEL);
	mutex_lock(&fab.lock);
	xa_for_each(&fab.peers, node, peer)
		if (node != w.node && peer->window &&
		    w.phys < peer->window_phys + peer->window_size &&
		    peer->window_phys < w.phys + w.size)
			ret = -EBUSY; /* one range cannot reach two nodes */
	peer = ret ? NULL : xpmem_fabric_peer(w.node, &spare);
	if (IS_ERR(peer))
		ret = PTR_ERR(peer);
	else if (peer && w.epoch < peer->epoch)
		ret = -ESTALE;
	if (!ret) {
		restarted = w.epoch > peer->epoch;
		if (restarted)
			xpmem_fabric_new_epoch(peer, w.epoch);
		peer->window_phys = w.phys;
		peer->window_size = w.size;
		peer->below_4g = w.below_4g;
		peer->window = true;
	}
	mutex_unlock(&fab.lock);
	kfree(spare);
	if (restarted)
		xpmem_remote_peer_gone(w.node, w.epoch, true);
	return ret;
}

static int xpmem_fabric_idmap_check(const struct xpmem_fabric_idmap *m)
{
	const struct xpmem_fabric_idmap_extent *e, *o;
	unsigned int i, j;

	if (!xpmem_fabric_node_valid(m->node) || m->pad ||
	    (m->kind != XPMEM_IDMAP_UID && m->kind != XPMEM_IDMAP_GID) ||
	    m->nr_extents > XPMEM_FABRIC_IDMAP_MAX)
		return -EINVAL;
	for (i = 0; i < XPMEM_FABRIC_IDMAP_MAX; i++) {
		e = &m->extents[i];
		if (i >= m->nr_extents) {
			if (e->remote_first || e->local_first || e->count || e->pad)
				return -EINVAL;
			continue;
		}
		if (!e->count || e->pad || e->remote_first > U32_MAX - e->count ||
		    e->local_first > U32_MAX - e->count)
			return -EINVAL; /* U32_MAX is no id ((uid_t)-1) */
		for (j = 0; j < i; j++) {
			o = &m->extents[j];
			if (e->remote_first < o->remote_first + o->count &&
			    o->remote_first < e->remote_first + e->count)
				return -EINVAL;
		}
	}
	return 0;
}

static long xpmem_fabric_set_idmap(void __user *uarg)
{
	struct xpmem_fabric_idmap m;
	struct xpmem_fabric_peer *peer, *spare;
	int ret;

	if (copy_from_user(&m, uarg, sizeof(m)))
		return -EFAULT;
	ret = xpmem_fabric_idmap_check(&m);
	if (ret)
		return ret;
	spare = kzalloc(sizeof(*spare), GFP_KERNEL);
	mutex_lock(&fab.lock);
	if (!fab.self || m.node == fab.self) {
		ret = -EINVAL;
	} else {
		peer = xpmem_fabric_peer(m.node, &spare);
		if (IS_ERR(peer))
			ret = PTR_ERR(peer);
		else
			peer->idmap[m.kind] = m;
	}
	mutex_unlock(&fab.lock);
	kfree(spare);
	return ret;
}

/* Node's user or group id as this node knows it: (u32)-1 (nobody) if unmapped. */
u32 xpmem_fabric_map_id(u32 node, unsigned int kind, u32 id)
{
	const struct xpmem_fabric_idmap *m;
	struct xpmem_fabric_peer *peer;
	u32 mapped = id;
	unsigned int i;

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, node);
	if (peer && peer->idmap[kind].nr_extents) {
		m = &peer->idmap[kind];
		mapped = (u32)-1;
		for (i = 0; i < m->nr_extents; i++)
			if (id >= m->extents[i].remote_first &&
			    id - m->extents[i].remote_first < m->extents[i].count)
				mapped = m->extents[i].local_first + id -
					 m->extents[i].remote_first;
	}
	mutex_unlock(&fab.lock);
	return mapped;
}

static long xpmem_fabric_node(void __user *uarg)
{
	struct xpmem_fabric_node n;
	struct xpmem_fabric_peer *peer, *spare;
	u64 gone_before = 0;
	bool fenced = true; /* a new epoch: the old incarnation is gone */
	int ret = 0;

	if (copy_from_user(&n, uarg, sizeof(n)))
		return -EFAULT;
	if (!xpmem_fabric_node_valid(n.node) || n.state > XPMEM_NODE_DEAD ||
	    !n.epoch || n.pad || n.fenced > 1 ||
	    (n.fenced && n.state != XPMEM_NODE_DEAD))
		return -EINVAL;
	spare = kzalloc(sizeof(*spare), GFP_KERNEL);
	mutex_lock(&fab.lock);
	if (!fab.self || n.node == fab.self) {
		ret = -EINVAL;
		goto out;
	}
	peer = xpmem_fabric_peer(n.node, &spare);
	if (IS_ERR(peer)) {
		ret = PTR_ERR(peer);
		goto out;
	}
	if (n.epoch < peer->epoch) {
		ret = -ESTALE;
		goto out;
	}
	if (n.epoch > peer->epoch) {
		xpmem_fabric_new_epoch(peer, n.epoch);
		gone_before = n.epoch;
	}
	peer->state = n.state;
	peer->fenced = n.fenced;
	peer->heartbeat_at_ns = ktime_get_ns() - min(n.heartbeat_age_ns, ktime_get_ns());
	peer->rtt_ns = n.rtt_ns;
	peer->rejected = n.rejected;
	if (n.state == XPMEM_NODE_DEAD) {
		xpmem_fabric_fail_pending(n.node, -EHOSTDOWN);
		peer->window = false;
		gone_before = U64_MAX;
		/* Unfenced, it may still reach what it was given: that stays pinned. */
		fenced = n.fenced;
	}
out:
	mutex_unlock(&fab.lock);
	kfree(spare);
	if (gone_before)
		xpmem_remote_peer_gone(n.node, gone_before, fenced);
	if (!ret && n.state == XPMEM_NODE_UP)
		xpmem_remote_peer_up();
	return ret;
}

/* Reads the header and payload of a message from the daemon. */
static int xpmem_fabric_msg_in(struct xpmem_fabric_msg *msg, void __user *uarg)
{
	if (copy_from_user(msg, uarg, XPMEM_FABRIC_MSG_HDR_LEN))
		return -EFAULT;
	if (msg->len > XPMEM_FABRIC_PAYLOAD_MAX ||
	    !xpmem_fabric_node_valid(msg->node))
		return -EINVAL;
	if (copy_from_user(msg->payload,
			   uarg + XPMEM_FABRIC_MSG_HDR_LEN, msg->len))
		return -EFAULT;
	return 0;
}

/* Serves one request from another node in a worker, then queues the answer. */
static void xpmem_fabric_job_run(struct work_struct *work)
{
	struct xpmem_fabric_job *job =
		container_of(work, struct xpmem_fabric_job, work);
	struct xpmem_fabric_msg *msg = &job->msg;
	bool queued;

	/* A ping's payload goes back as it came. */
	msg->status = msg->type == XPMEM_FMSG_PING ? 0 : xpmem_remote_serve(msg);
	if (msg->status)
		msg->len = 0;
	msg->type |= XPMEM_FMSG_ANSWER;

	mutex_lock(&fab.lock);
	queued = fab.daemon;
	if (queued)
		list_add_tail(&job->queue, &fab.answers);
	else
		fab.jobs--; /* nobody to send it: the asker gives up on its own */
	mutex_unlock(&fab.lock);
	if (queued)
		wake_up_interruptible(&xpmem_fabric_readers);
	else
		kfree(job);
}

/* A request from another node's kernel: taken now, answered through read(). */
static long xpmem_fabric_serve(void __user *uarg)
{
	struct xpmem_fabric_peer *peer;
	struct xpmem_fabric_job *job;
	int ret;

	job = kmalloc(sizeof(*job), GFP_KERNEL);
	if (!job)
		return -ENOMEM;
	ret = xpmem_fabric_msg_in(&job->msg, uarg);
	if (ret)
		goto err;
	if (job->msg.type & XPMEM_FMSG_ANSWER) {
		ret = -EINVAL;
		goto err;
	}

	mutex_lock(&fab.lock);
	peer = xa_load(&fab.peers, job->msg.node);
	if (!peer || peer->epoch != job->msg.epoch ||
	    peer->state == XPMEM_NODE_DEAD)
		ret = -ESTALE;
	else if (fab.jobs >= XPMEM_FABRIC_MAX_JOBS)
		ret = -EBUSY;
	if (!ret) {
		peer->served++;
		fab.jobs++;
	}
	mutex_unlock(&fab.lock);
	if (ret)
		goto err;
	INIT_WORK(&job->work, xpmem_fabric_job_run);
	queue_work(xpmem_fabric_wq, &job->work);
	return 0;
err:
	kfree(job);
	return ret;
}

/* The answer to one of our requests, from the node it went to. */
static long xpmem_fabric_reply(void __user *uarg)
{
	struct xpmem_fabric_req *req;
	struct xpmem_fabric_msg *msg;
	int ret;

	msg = kmalloc(sizeof(*msg), GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	ret = xpmem_fabric_msg_in(msg, uarg);
	if (ret)
		goto out;
	if (msg->status > 0 || !(msg->type & XPMEM_FMSG_ANSWER)) {
		ret = -EINVAL;
		goto out;
	}
	/* Kernel-internal codes (restart, ...) mean nothing here: -EIO. */
	if (msg->status < -EHWPOISON)
		msg->status = -EIO;
	mutex_lock(&fab.lock);
	req = msg->id <= U32_MAX ? xa_load(&fab.reqs, msg->id) : NULL;
	if (!req)
		ret = -ENOENT; /* given up already */
	else if (req->node != msg->node || !list_empty(&req->queue) ||
		 req->msg->type != (msg->type & ~XPMEM_FMSG_ANSWER))
		ret = -EINVAL;
	else
		xpmem_fabric_finish(req, msg->status, msg);
	mutex_unlock(&fab.lock);
out:
	kfree(msg);
	return ret;
}

static long xpmem_fabric_ioctl(struct file *file, unsigned int cmd,
			       unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case XPMEM_FABRIC_JOIN:
		return xpmem_fabric_join(uarg);
	case XPMEM_FABRIC_WINDOW:
		return xpmem_fabric_window(uarg);
	case XPMEM_FABRIC_NODE:
		return xpmem_fabric_node(uarg);
	case XPMEM_FABRIC_SERVE:
		return xpmem_fabric_serve(uarg);
	case XPMEM_FABRIC_REPLY:
		return xpmem_fabric_reply(uarg);
	case XPMEM_FABRIC_IDMAP:
		return xpmem_fabric_set_idmap(uarg);
	}
	return -ENOTTY;
}

/* Query records: this node first, then every peer ever mentioned. */
void xpmem_fabric_query_nodes(void *(*slot)(void *ctx), void *ctx,
			      bool see_all)
{
	struct xpmem_fabric_peer *peer;
	struct xpmem_node_info *info;
	unsigned long node;

	mutex_lock(&fab.lock);
	if (fab.self) {
		info = slot(ctx);
		if (info) {
			memset(info, 0, sizeof(*info));
			info->node = fab.self;
			info->state = fab.daemon ? XPMEM_NODE_UP :
						   XPMEM_NODE_UNKNOWN;
			info->epoch = fab.epoch;
			info->flags = XPMEM_NODE_INFO_SELF;
		}
	}
	xa_for_each(&fab.peers, node, peer) {
		info = slot(ctx);
		if (!info)
			continue;
		memset(info, 0, sizeof(*info));
		info->node = peer->node;
		info->state = peer->state;
		info->epoch = peer->epoch;
		info->heartbeat_age_ns = peer->heartbeat_at_ns ?
			ktime_get_ns() - peer->heartbeat_at_ns : 0;
		info->rtt_ns = peer->rtt_ns;
		info->rejected = peer->rejected;
		if (peer->fenced)
			info->flags |= XPMEM_NODE_INFO_FENCED;
		if (peer->window) {
			info->flags |= XPMEM_NODE_INFO_WINDOW;
			/* Physical addresses are for root only, as in /proc/iomem. */
			if (see_all) {
				info->window_phys = peer->window_phys;
				info->window_size = peer->window_size;
			}
		}
		info->requests = peer->requests;
		info->request_failures = peer->failures;
		info->served = peer->served;
	}
	mutex_unlock(&fab.lock);
}

static const struct file_operations xpmem_fabric_fops = {
	.owner = THIS_MODULE,
	.open = xpmem_fabric_open,
	.release = xpmem_fabric_release,
	.read = xpmem_fabric_read,
	.poll = xpmem_fabric_poll,
	.unlocked_ioctl = xpmem_fabric_ioctl,
};

static struct miscdevice xpmem_fabric_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "xpmem-fabric",
	.fops = &xpmem_fabric_fops,
	.mode = 0600,
};

int xpmem_fabric_init(void)
{
	int ret;

	ret = xpmem_fabric_parse_static_windows();
	if (ret)
		return ret;
	xpmem_fabric_wq = alloc_workqueue("xpmem_fabric", WQ_UNBOUND, 0);
	if (!xpmem_fabric_wq)
		return -ENOMEM;
	ret = misc_register(&xpmem_fabric_miscdev);
	if (ret)
		destroy_workqueue(xpmem_fabric_wq);
	return ret;
}

void xpmem_fabric_exit(void)
{
	struct xpmem_fabric_peer *peer;
	unsigned long node;

	misc_deregister(&xpmem_fabric_miscdev);
	/* No daemon is left (it holds the module): running jobs drop their answers. */
	destroy_workqueue(xpmem_fabric_wq);
	xpmem_remote_exit();
	xa_for_each(&fab.peers, node, peer)
		kfree(peer);
	xa_destroy(&fab.peers);
	if (fab.beacon)
		__free_page(fab.beacon);
}
