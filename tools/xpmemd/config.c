// SPDX-License-Identifier: LGPL-2.1-or-later
/* xpmemd: parsing the configuration file (see config.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "wire.h"
#include "xpmem_fabric.h"

#define MAX_TOKENS 16
#define IORESOURCE_MEM 0x00000200ULL

struct parse {
	const char *name;
	const char *pci_root;
	int line;
	char *err;
	size_t errlen;
	/* Where each single directive was given (0: not given). */
	int node_line, listen_line, key_line, hb_line, suspect_line, dead_line, fence_line;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decimal, or hexadecimal with 0x: no sign, no junk, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	unsigned d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

static int parse_node(struct parse *p, const char *s, const char *what, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < 1 || v > XPMEM_FABRIC_MAX_NODE)
		return fail(p, "%s '%s': must be a node number 1..%d", what, s,
			    XPMEM_FABRIC_MAX_NODE);
	*out = (uint32_t)v;
	return 0;
}

static int parse_ms(struct parse *p, const char *kw, const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < 1 || v > 3600000)
		return fail(p, "%s '%s': must be milliseconds, 1..3600000", kw, s);
	*out = (uint32_t)v;
	return 0;
}

static int parse_addr(struct parse *p, const char *ip, const char *port, struct sockaddr_in *sa)
{
	uint64_t v;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
		return fail(p, "'%s' is not an IPv4 address", ip);
	if (parse_u64(port, &v) || v < 1 || v > 65535)
		return fail(p, "port '%s': must be 1..65535", port);
	sa->sin_port = htons((uint16_t)v);
	return 0;
}

/* The third line of text, NUL-terminated into buf. */
static int third_line(const char *text, char *buf, size_t len)
{
	const char *s = text, *e;

	for (int i = 0; i < 2; i++) {
		s = strchr(s, '\n');
		if (!s)
			return -EINVAL;
		s++;
	}
	e = strchr(s, '\n');
	if (!e)
		e = s + strlen(s);
	if ((size_t)(e - s) >= len)
		return -EINVAL;
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = 0;
	return 0;
}

int xpmemd_parse_pci_resource(const char *text, uint64_t *phys, uint64_t *size)
{
	char line[256], a[64], b[64], c[64], extra[2];
	uint64_t start, end, flags;

	if (third_line(text, line, sizeof(line)))
		return -EINVAL;
	if (sscanf(line, "%63s %63s %63s %1s", a, b, c, extra) != 3)
		return -EINVAL;
	if (parse_u64(a, &start) || parse_u64(b, &end) || parse_u64(c, &flags))
		return -EINVAL;
	if (start == 0 || end <= start || !(flags & IORESOURCE_MEM))
		return -EINVAL;
	*phys = start;
	*size = end - start + 1;
	return 0;
}

static int read_small_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		if (got == cap) {
			/* One more byte tells "exactly cap" from "larger". */
			uint8_t probe;

			n = read(fd, &probe, 1);
			if (n < 0 && errno == EINTR)
				continue;
			close(fd);
			if (n < 0)
				return -errno;
			if (n > 0)
				return -EFBIG;
			break;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (n == 0) {
			close(fd);
			break;
		}
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

static int window_pci(struct parse *p, const char *bdf, struct xpmemd_peer_conf *pc)
{
	char path[512];
	char text[4096];
	size_t len;
	int r;

	if (strlen(bdf) >= sizeof(pc->bdf) || strchr(bdf, '/') || bdf[0] == '.')
		return fail(p, "window-pci '%s': not a PCI address", bdf);
	snprintf(path, sizeof(path), "%s/%s/resource", p->pci_root, bdf);
	r = read_small_file(path, (uint8_t *)text, sizeof(text) - 1, &len);
	if (r)
		return fail(p, "window-pci %s: cannot read %s: %s", bdf, path, strerror(-r));
	text[len] = 0;
	if (xpmemd_parse_pci_resource(text, &pc->win_phys, &pc->win_size))
		return fail(p, "window-pci %s: %s has no memory BAR 2 (third line)", bdf, path);
	snprintf(pc->bdf, sizeof(pc->bdf), "%s", bdf);
	return 0;
}

static int do_peer(struct parse *p, struct xpmemd_config *cfg, char **tok, int ntok)
{
	struct xpmemd_peer_conf pc, *np;
	int i;

	memset(&pc, 0, sizeof(pc));
	pc.line = p->line;
	if (ntok < 6)
		return fail(p, "usage: peer NODE IPV4 PORT window-pci BDF | window-phys PHYS SIZE "
			       "[below-4g BYTES]");
	if (parse_node(p, tok[1], "peer", &pc.node) || parse_addr(p, tok[2], tok[3], &pc.addr))
		return -1;
	if (!strcmp(tok[4], "window-pci")) {
		if (window_pci(p, tok[5], &pc))
			return -1;
		i = 6;
	} else if (!strcmp(tok[4], "window-phys")) {
		if (ntok < 7)
			return fail(p, "window-phys needs PHYS and SIZE");
		if (parse_u64(tok[5], &pc.win_phys))
			return fail(p, "window-phys address '%s' is not a number", tok[5]);
		if (parse_u64(tok[6], &pc.win_size) || pc.win_size == 0)
			return fail(p, "window-phys size '%s' is not a nonzero number", tok[6]);
		if (pc.win_phys + pc.win_size < pc.win_phys)
			return fail(p, "window-phys %s + %s wraps around", tok[5], tok[6]);
		i = 7;
	} else {
		return fail(p, "peer %u: expected window-pci or window-phys, not '%s'", pc.node,
			    tok[4]);
	}
	if (i < ntok) {
		if (strcmp(tok[i], "below-4g") || i + 1 >= ntok)
			return fail(p, "peer %u: expected 'below-4g BYTES' after the window, not "
				       "'%s'", pc.node, tok[i]);
		if (parse_u64(tok[i + 1], &pc.below_4g))
			return fail(p, "below-4g '%s' is not a number", tok[i + 1]);
		i += 2;
	}
	if (i < ntok)
		return fail(p, "peer %u: unexpected '%s'", pc.node, tok[i]);

	for (size_t j = 0; j < cfg->npeers; j++) {
		if (cfg->peers[j].node == pc.node)
			return fail(p, "peer %u already given on line %d", pc.node,
				    cfg->peers[j].line);
		if (cfg->peers[j].addr.sin_addr.s_addr == pc.addr.sin_addr.s_addr &&
		    cfg->peers[j].addr.sin_port == pc.addr.sin_port)
			return fail(p, "peer %u: address %s %s is peer %u's (line %d)", pc.node,
				    tok[2], tok[3], cfg->peers[j].node, cfg->peers[j].line);
	}
	if (cfg->npeers >= XPMEM_FABRIC_MAX_NODE)
		return fail(p, "too many peers");
	np = realloc(cfg->peers, (cfg->npeers + 1) * sizeof(*np));
	if (!np)
		return fail(p, "out of memory");
	cfg->peers = np;
	cfg->peers[cfg->npeers++] = pc;
	return 0;
}

static int parse_id(struct parse *p, const char *what, const char *s, uint32_t *out)
{
	uint64_t v;

	/* (uint32_t)-1 is no id. */
	if (parse_u64(s, &v) || v >= UINT32_MAX)
		return fail(p, "idmap %s '%s': must be an id 0..%u", what, s, UINT32_MAX - 1);
	*out = (uint32_t)v;
	return 0;
}

static int do_idmap(struct parse *p, struct xpmemd_config *cfg, char **tok, int ntok)
{
	struct xpmemd_idmap_conf m = { .line = p->line }, *nm;
	size_t same = 0;

	if (ntok != 6)
		return fail(p, "usage: idmap NODE uid|gid REMOTE LOCAL COUNT");
	if (parse_node(p, tok[1], "idmap", &m.node))
		return -1;
	if (!strcmp(tok[2], "uid"))
		m.kind = XPMEM_IDMAP_UID;
	else if (!strcmp(tok[2], "gid"))
		m.kind = XPMEM_IDMAP_GID;
	else
		return fail(p, "idmap: expected uid or gid, not '%s'", tok[2]);
	if (parse_id(p, "REMOTE", tok[3], &m.remote_first) ||
	    parse_id(p, "LOCAL", tok[4], &m.local_first) ||
	    parse_id(p, "COUNT", tok[5], &m.count))
		return -1;
	if (!m.count || m.count > UINT32_MAX - 1 - m.remote_first ||
	    m.count > UINT32_MAX - 1 - m.local_first)
		return fail(p, "idmap: COUNT %s is 0 or runs past the last id", tok[5]);
	for (size_t i = 0; i < cfg->nidmaps; i++) {
		const struct xpmemd_idmap_conf *o = &cfg->idmaps[i];

		if (o->node != m.node || o->kind != m.kind)
			continue;
		if (m.remote_first < o->remote_first + o->count &&
		    o->remote_first < m.remote_first + m.count)
			return fail(p, "idmap: node %u's %s %u..%u already mapped on line %d", m.node,
				    tok[2], m.remote_first, m.remote_first + m.count - 1, o->line);
		same++;
	}
	if (same == XPMEM_FABRIC_IDMAP_MAX)
		return fail(p, "idmap: node %u has %d %s ranges already", m.node,
			    XPMEM_FABRIC_IDMAP_MAX, tok[2]);
	nm = realloc(cfg->idmaps, (cfg->nidmaps + 1) * sizeof(*nm));
	if (!nm)
		return fail(p, "out of memory");
	cfg->idmaps = nm;
	cfg->idmaps[cfg->nidmaps++] = m;
	return 0;
}

void xpmemd_config_idmap(const struct xpmemd_config *cfg, uint32_t node, uint32_t kind,
			 struct xpmem_fabric_idmap *out)
{
	memset(out, 0, sizeof(*out));
	out->node = node;
	out->kind = kind;
	for (size_t i = 0; i < cfg->nidmaps; i++) {
		const struct xpmemd_idmap_conf *m = &cfg->idmaps[i];
		struct xpmem_fabric_idmap_extent *e;

		if (m->node != node || m->kind != kind)
			continue;
		e = &out->extents[out->nr_extents++];
		e->remote_first = m->remote_first;
		e->local_first = m->local_first;
		e->count = m->count;
	}
}

static int once(struct parse *p, int *where, const char *kw)
{
	if (*where)
		return fail(p, "%s already given on line %d", kw, *where);
	*where = p->line;
	return 0;
}

static int want_args(struct parse *p, int ntok, int n, const char *usage)
{
	if (ntok != n + 1)
		return fail(p, "usage: %s", usage);
	return 0;
}

static int do_line(struct parse *p, struct xpmemd_config *cfg, char *line)
{
	char *tok[MAX_TOKENS + 1];
	char *hash, *s;
	int ntok = 0;
	size_t len;

	hash = strchr(line, '#');
	if (hash)
		*hash = 0;
	len = strlen(line);
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
		       line[len - 1] == '\t'))
		line[--len] = 0;
	for (s = strtok(line, " \t\r"); s; s = strtok(NULL, " \t\r")) {
		if (ntok == MAX_TOKENS)
			return fail(p, "too many words");
		tok[ntok++] = s;
	}
	if (!ntok)
		return 0;

	if (!strcmp(tok[0], "node")) {
		if (once(p, &p->node_line, "node") || want_args(p, ntok, 1, "node NODE"))
			return -1;
		return parse_node(p, tok[1], "node", &cfg->node);
	}
	if (!strcmp(tok[0], "listen")) {
		if (once(p, &p->listen_line, "listen") || want_args(p, ntok, 2, "listen IPV4 PORT"))
			return -1;
		return parse_addr(p, tok[1], tok[2], &cfg->listen);
	}
	if (!strcmp(tok[0], "key-file")) {
		uint8_t *key;
		size_t klen;
		int r;

		if (once(p, &p->key_line, "key-file") || want_args(p, ntok, 1, "key-file PATH"))
			return -1;
		key = malloc(WIRE_KEY_MAX);
		if (!key)
			return fail(p, "out of memory");
		r = read_small_file(tok[1], key, WIRE_KEY_MAX, &klen);
		if (r == -EFBIG) {
			free(key);
			return fail(p, "key-file %s: larger than %d bytes", tok[1], WIRE_KEY_MAX);
		}
		if (r) {
			free(key);
			return fail(p, "key-file %s: %s", tok[1], strerror(-r));
		}
		if (klen < WIRE_KEY_MIN) {
			free(key);
			return fail(p, "key-file %s: %zu bytes, needs at least %d", tok[1], klen,
				    WIRE_KEY_MIN);
		}
		cfg->key = key;
		cfg->key_len = klen;
		cfg->key_file = strdup(tok[1]);
		if (!cfg->key_file)
			return fail(p, "out of memory");
		return 0;
	}
	if (!strcmp(tok[0], "peer"))
		return do_peer(p, cfg, tok, ntok);
	if (!strcmp(tok[0], "idmap"))
		return do_idmap(p, cfg, tok, ntok);
	if (!strcmp(tok[0], "heartbeat-ms")) {
		if (once(p, &p->hb_line, tok[0]) || want_args(p, ntok, 1, "heartbeat-ms MS"))
			return -1;
		return parse_ms(p, tok[0], tok[1], &cfg->heartbeat_ms);
	}
	if (!strcmp(tok[0], "suspect-ms")) {
		if (once(p, &p->suspect_line, tok[0]) || want_args(p, ntok, 1, "suspect-ms MS"))
			return -1;
		return parse_ms(p, tok[0], tok[1], &cfg->suspect_ms);
	}
	if (!strcmp(tok[0], "dead-ms")) {
		if (once(p, &p->dead_line, tok[0]) || want_args(p, ntok, 1, "dead-ms MS"))
			return -1;
		return parse_ms(p, tok[0], tok[1], &cfg->dead_ms);
	}
	if (!strcmp(tok[0], "fence-command")) {
		if (once(p, &p->fence_line, tok[0]) || want_args(p, ntok, 1, "fence-command PATH"))
			return -1;
		if (tok[1][0] != '/')
			return fail(p, "fence-command '%s': must be an absolute path", tok[1]);
		if (access(tok[1], X_OK))
			return fail(p, "fence-command %s: %s", tok[1], strerror(errno));
		cfg->fence_command = strdup(tok[1]);
		if (!cfg->fence_command)
			return fail(p, "out of memory");
		return 0;
	}
	return fail(p, "unknown directive '%s'", tok[0]);
}

/* What can only be checked once the whole file is read. */
static int finish(struct parse *p, struct xpmemd_config *cfg)
{
	p->line = 0;
	if (!p->node_line)
		return fail(p, "missing 'node N'");
	if (!p->listen_line)
		return fail(p, "missing 'listen IPV4 PORT'");
	if (!p->key_line)
		return fail(p, "missing 'key-file PATH'");
	for (size_t i = 0; i < cfg->npeers; i++) {
		if (cfg->peers[i].node == cfg->node) {
			p->line = cfg->peers[i].line;
			return fail(p, "peer %u is this node (line %d)", cfg->node, p->node_line);
		}
		if (cfg->peers[i].addr.sin_addr.s_addr == cfg->listen.sin_addr.s_addr &&
		    cfg->peers[i].addr.sin_port == cfg->listen.sin_port) {
			p->line = cfg->peers[i].line;
			return fail(p, "peer %u has this node's listen address (line %d)",
				    cfg->peers[i].node, p->listen_line);
		}
	}
	for (size_t i = 0; i < cfg->nidmaps; i++) {
		size_t j = 0;

		while (j < cfg->npeers && cfg->peers[j].node != cfg->idmaps[i].node)
			j++;
		if (j == cfg->npeers) {
			p->line = cfg->idmaps[i].line;
			return fail(p, "idmap: node %u is not a peer", cfg->idmaps[i].node);
		}
	}
	if (!cfg->heartbeat_ms)
		cfg->heartbeat_ms = XPMEMD_DEFAULT_HEARTBEAT_MS;
	if (!cfg->suspect_ms)
		cfg->suspect_ms = 5 * cfg->heartbeat_ms;
	if (!cfg->dead_ms)
		cfg->dead_ms = 15 * cfg->heartbeat_ms;
	if (cfg->suspect_ms <= cfg->heartbeat_ms) {
		p->line = p->suspect_line ? p->suspect_line : p->hb_line;
		return fail(p, "suspect-ms (%u) must be larger than heartbeat-ms (%u)",
			    cfg->suspect_ms, cfg->heartbeat_ms);
	}
	if (cfg->dead_ms <= cfg->suspect_ms) {
		p->line = p->dead_line ? p->dead_line : p->suspect_line ? p->suspect_line : p->hb_line;
		return fail(p, "dead-ms (%u) must be larger than suspect-ms (%u)", cfg->dead_ms,
			    cfg->suspect_ms);
	}
	return 0;
}

int xpmemd_config_parse(FILE *f, const char *name, const char *pci_root,
			struct xpmemd_config *cfg, char *err, size_t errlen)
{
	struct parse p = {
		.name = name,
		.pci_root = pci_root ? pci_root : XPMEMD_PCI_ROOT,
		.err = err,
		.errlen = errlen,
	};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	memset(cfg, 0, sizeof(*cfg));
	while ((n = getline(&line, &cap, f)) >= 0) {
		p.line++;
		if (memchr(line, 0, (size_t)n)) {
			r = fail(&p, "NUL byte in line");
			break;
		}
		r = do_line(&p, cfg, line);
		if (r)
			break;
	}
	if (!r && ferror(f)) {
		p.line = 0;
		r = fail(&p, "read error");
	}
	free(line);
	if (!r)
		r = finish(&p, cfg);
	if (r)
		xpmemd_config_free(cfg);
	return r;
}

int xpmemd_config_load(const char *path, const char *pci_root, struct xpmemd_config *cfg,
		       char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	r = xpmemd_config_parse(f, path, pci_root, cfg, err, errlen);
	fclose(f);
	return r;
}

void xpmemd_config_free(struct xpmemd_config *cfg)
{
	if (cfg->key)
		memset(cfg->key, 0, cfg->key_len);
	free(cfg->key);
	free(cfg->key_file);
	free(cfg->peers);
	free(cfg->fence_command);
	free(cfg->idmaps);
	memset(cfg, 0, sizeof(*cfg));
}
