#include "memtable.h"

#include "arena.h"
#include "error.h"
#include "mem.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* Small next to the smallest memtable_size (64 KiB): the seal trigger reads
 * the arena's reserved bytes, so they must track what is really stored. */
#define MEMTABLE_ARENA_BLOCK (16u * 1024u)

/*
 * A node: fixed header, `height` links, then the internal key and the
 * value, all in one arena allocation. Nodes are immutable once published
 * except for their links.
 */
struct memtable_node {
	uint32_t key_len;   /* internal key bytes, height << MEMTABLE_KEYLEN_BITS */
	uint32_t value_len;
	/* Level i's link (see below). Atomic because inserts CAS them while
	 * readers walk: a release CAS publishes the node's contents, readers
	 * load with acquire. */
	_Atomic uint64_t next[];
};

/*
 * A link holds its successor's address in the low 48 bits and, in the top
 * 16, a hint of the successor's nskey: the length d of the prefix it
 * shares with this node's nskey (the head's counts as empty) and its byte
 * at d. A search knows how many bytes the target shares with the node it
 * stands on, and from that and the hint it can tell, without loading the
 * successor, whether the target sorts before it: a level's last step, the
 * one that goes down, then costs no cache miss, and neither do most steps
 * over nodes that share less with the target than the current one does.
 * d = MEMTABLE_NO_HINT when the successor's nskey has no byte at d (it
 * equals this node's) or d does not fit: the search then compares keys.
 * User-space addresses fit in 48 bits on x86-64 and arm64 (the kernel hands
 * out higher ones only to a mapping that asks for them);
 * memtable_node_new refuses any node that would not.
 */
#define MEMTABLE_ADDR_BITS 48
#define MEMTABLE_ADDR_MASK ((UINT64_C(1) << MEMTABLE_ADDR_BITS) - 1)
#define MEMTABLE_NO_HINT 0xffu

struct memtable {
	arena *arena;
	/* Never reused (see memtable_next_id), so a thread's insert hint can
	 * tell which table it was taken from without holding a pointer. */
	uint64_t id;
	struct memtable_node *head; /* sentinel of full height, no key */
	/* Shared between every holder: acq_rel on the decrement so the
	 * freeing thread sees every other holder's last access. */
	_Atomic uint32_t refs;
	/* Statistics only: relaxed. */
	_Atomic uint64_t entries;
	_Atomic uint64_t held_bytes; /* values added with memtable_add_held */
	/* Where those values live (memtable_hold), released with the table. */
	void *home;
	void (*home_release)(void *home);
	/* The tallest node's height: searches start there. Relaxed: a stale
	 * value only starts a search a level too low (every node is linked
	 * at level 0) or at an empty level. */
	_Atomic int height;
	/*
	 * A hash index for point lookups: a get walks one short chain (one or
	 * two cache misses) instead of descending the skiplist (a miss per
	 * level). One entry per distinct key, pointing at its newest version;
	 * older versions follow it at level 0 of the skiplist. Entries are
	 * pushed by CAS at their bucket's head, after the node is linked, and
	 * live as long as the arena. A bucket word holds its chain's head
	 * below MEMTABLE_ADDR_BITS and, above, a filter of the hashes in the
	 * chain (memtable_filter_bit): a key whose bit is clear is not in the
	 * chain, so a new key's insert, and a get of a key the table does not
	 * hold, skip the walk and its cache misses.
	 */
	_Atomic uint64_t *buckets;
	size_t bucket_mask;
};

struct memtable_hentry {
	struct memtable_hentry *next; /* written before the push, never after */
	/* The key's hash, fixed before the push: a chain walk skips other
	 * keys' entries without loading their nodes, a cache miss each. */
	uint64_t hash;
	/* The key's newest node: only ever raised (CAS on its sequence), by
	 * release, after that node is linked. */
	_Atomic(struct memtable_node *) node;
};

/* A search target: an internal key given as its two parts, so that lookups
 * by nskey need not build a key. */
struct memtable_target {
	keys_slice nskey;
	uint64_t trailer;
};

static inline const uint8_t *memtable_node_key(const struct memtable_node *n, int height)
{
	return (const uint8_t *)&n->next[height];
}

/*
 * The key starts after the node's next array, so its height must be known to
 * find it. It lives in the top 8 bits of key_len, which saves the padding a
 * separate field would cost: internal keys are at most 8 +
 * CESIUM_MAX_KEY_SIZE + 8 bytes, far below 2^24.
 */
#define MEMTABLE_KEYLEN_BITS 24
#define MEMTABLE_KEYLEN_MASK ((UINT32_C(1) << MEMTABLE_KEYLEN_BITS) - 1)

static inline int memtable_node_height(const struct memtable_node *n)
{
	return (int)(n->key_len >> MEMTABLE_KEYLEN_BITS);
}

static inline keys_slice memtable_node_ikey(const struct memtable_node *n)
{
	return (keys_slice){ memtable_node_key(n, memtable_node_height(n)),
		             n->key_len & MEMTABLE_KEYLEN_MASK };
}

/* Values are at most CESIUM_MAX_VALUE_SIZE (64 MiB), so value_len's top
 * bit is free to say that the node holds a pointer to the value (in the
 * table's home, memtable_add_held) instead of its bytes, and the next to
 * say that the value is alone in its record (MEMTABLE_HELD_ALONE). */
#define MEMTABLE_VALUE_HELD (UINT32_C(1) << 31)
#define MEMTABLE_VALUE_ALONE (UINT32_C(1) << 30)
#define MEMTABLE_VALUE_FLAGS (MEMTABLE_VALUE_HELD | MEMTABLE_VALUE_ALONE)

static inline keys_slice memtable_node_value(const struct memtable_node *n)
{
	keys_slice k = memtable_node_ikey(n);
	if (!(n->value_len & MEMTABLE_VALUE_HELD))
		return (keys_slice){k.data + k.len, n->value_len};
	const uint8_t *p;
	memcpy(&p, k.data + k.len, sizeof(p));
	return (keys_slice){p, n->value_len & ~MEMTABLE_VALUE_FLAGS};
}

static inline struct memtable_node *memtable_link_node(uint64_t link)
{
	return (struct memtable_node *)(uintptr_t)(link & MEMTABLE_ADDR_MASK);
}

static inline uint64_t memtable_link_load(const struct memtable_node *n, int level)
{
	return atomic_load_explicit(&((struct memtable_node *)n)->next[level],
	                            memory_order_acquire);
}

static inline struct memtable_node *memtable_next(const struct memtable_node *n, int level)
{
	return memtable_link_node(memtable_link_load(n, level));
}

/* The hint bits of a link to a node whose nskey is `nskey` from one that
 * shares its first `lcp` bytes. */
static inline uint64_t memtable_key_hint(keys_slice nskey, size_t lcp)
{
	if (lcp >= MEMTABLE_NO_HINT || lcp >= nskey.len)
		return (uint64_t)MEMTABLE_NO_HINT << 56;
	return (uint64_t)lcp << 56 | (uint64_t)nskey.data[lcp] << MEMTABLE_ADDR_BITS;
}

static inline uint64_t memtable_link(const struct memtable_node *n, uint64_t hint)
{
	return n ? (uint64_t)(uintptr_t)n | hint : 0;
}

/* Where a search stands at one level: prev sorts before the target and
 * shares prev_lcp nskey bytes with it; link is prev's link there as read,
 * to a node at or after the target (or none), whose hint from the target
 * is next_hint. */
struct memtable_step {
	struct memtable_node *prev;
	uint64_t link;
	size_t prev_lcp;
	uint64_t next_hint;
};

/* The length of the common prefix of a[0..n) and b[0..n), looked for from
 * byte `from` on (the bytes before it are known equal). 8 bytes at a time:
 * skiplist searches compare short keys dozens of times per insert. */
static inline size_t memtable_lcp_bytes(const uint8_t *a, const uint8_t *b, size_t n, size_t from)
{
	size_t i = from;
	for (; i + 8 <= n; i += 8) {
		uint64_t x = keys_get_u64le(a + i) ^ keys_get_u64le(b + i);
		if (x)
			return i + (size_t)__builtin_ctzll(x) / 8;
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/* Order of node n against t (<0: n first), the nskey bytes they share in
 * *lcp, comparing from byte `from` on (the bytes before it are equal). */
static int memtable_cmp_lcp(const struct memtable_node *n, const struct memtable_target *t,
                            size_t from, size_t *lcp)
{
	keys_slice ik = memtable_node_ikey(n);
	size_t nlen = ik.len - KEYS_TRAILER_SIZE, tlen = t->nskey.len;
	size_t min = nlen < tlen ? nlen : tlen;
	size_t i = memtable_lcp_bytes(ik.data, t->nskey.data, min, from);
	*lcp = i;
	if (i < min)
		return ik.data[i] < t->nskey.data[i] ? -1 : 1;
	if (nlen != tlen)
		return nlen < tlen ? -1 : 1;
	uint64_t tr = keys_get_u64le(ik.data + nlen);
	return tr > t->trailer ? -1 : tr < t->trailer ? 1 : 0;
}

/*
 * Order of link's node n against t (<0: n first), from the link's hint
 * where it tells, loading n only where it does not. prev_lcp: the nskey
 * bytes t shares with the link's owner, which sorts before t. Sets
 * *n_lcp to the bytes t shares with n, and, when n sorts after t, *hint to
 * the hint of a link from t to n.
 */
static inline int memtable_step_cmp(const struct memtable_target *t, size_t prev_lcp, uint64_t link,
                                    size_t *n_lcp, uint64_t *hint)
{
	size_t d = (size_t)(link >> 56);
	size_t from = 0;
	if (d != MEMTABLE_NO_HINT && prev_lcp < t->nskey.len) {
		/* t and n both sort after the owner p: t differs from p at
		 * prev_lcp (t's byte the greater), n at d (n's byte the
		 * greater, or p ends there). Whichever departs first from p
		 * is the greater of the two. */
		if (prev_lcp > d) {
			*n_lcp = d;
			*hint = link & ~MEMTABLE_ADDR_MASK;
			return 1;
		}
		if (prev_lcp < d) {
			*n_lcp = prev_lcp;
			return -1;
		}
		unsigned nb = (unsigned)(link >> MEMTABLE_ADDR_BITS) & 0xffu;
		unsigned tb = t->nskey.data[d];
		if (tb != nb) {
			*n_lcp = d;
			*hint = link & ~MEMTABLE_ADDR_MASK;
			return tb < nb ? 1 : -1;
		}
		from = d + 1;
	}
	const struct memtable_node *n = memtable_link_node(link);
	int c = memtable_cmp_lcp(n, t, from, n_lcp);
	if (c >= 0) { /* (equal only if a caller broke the unique-seq rule) */
		keys_slice ik = memtable_node_ikey(n);
		*hint =
		    memtable_key_hint(keys_slice_of(ik.data, ik.len - KEYS_TRAILER_SIZE), *n_lcp);
	}
	return c;
}

/* A node with room for its key and value, its links empty; NULL with the
 * error set when out of memory. */
static struct memtable_node *memtable_node_new(memtable *mt, int height, size_t key_len,
                                               size_t value_len)
{
	size_t size = sizeof(struct memtable_node) + (size_t)height * sizeof(void *) + key_len +
	              value_len;
	struct memtable_node *n = arena_alloc(mt->arena, size, alignof(struct memtable_node));
	if (!n) {
		error_set(CESIUM_ENOMEM, "memtable: arena out of memory");
		return NULL;
	}
	if ((uintptr_t)n > MEMTABLE_ADDR_MASK) { /* see MEMTABLE_ADDR_BITS */
		error_set(CESIUM_ENOMEM, "memtable: memory at %p is above what a link can address",
		          (void *)n);
		return NULL;
	}
	n->key_len = (uint32_t)key_len | (uint32_t)height << MEMTABLE_KEYLEN_BITS;
	n->value_len = (uint32_t)value_len;
	for (int i = 0; i < height; i++)
		atomic_init(&n->next[i], 0);
	return n;
}

/* xorshift64* per thread: inserts on different threads never share state. */
static int memtable_random_height(void)
{
	static _Thread_local uint64_t state __attribute__((tls_model("initial-exec")));
	if (state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = (uint64_t)(uintptr_t)&ts ^ (uint64_t)ts.tv_nsec ^
		        ((uint64_t)ts.tv_sec << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
		if (state == 0)
			state = 1;
	}
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	uint64_t r = state * UINT64_C(0x2545f4914f6cdd1d);
	int h = 1;
	/* p = 1/2 per extra level. */
	while (h < MEMTABLE_MAX_HEIGHT && (r & 1) == 0) {
		h++;
		r >>= 1;
	}
	return h;
}

/* Source of memtable ids; relaxed: only uniqueness matters. */
static _Atomic uint64_t memtable_next_id = 1;

/*
 * Where this thread last inserted: prev[i] is the node after which it
 * linked (or, above the new node's height, searched past) at level i, all
 * in the table with id `id`. Nodes are never unlinked, so while the caller
 * holds a reference on that table the pointers stay valid; an id that does
 * not match the table at hand means the hint is ignored. Sequential keys
 * then insert with two comparisons instead of a full descent. lcp[i]: the
 * nskey bytes prev[i] shares with the key inserted (SIZE_MAX when prev[i]
 * is its node), from which those it shares with the next key follow.
 * Thread-local so that concurrent writers never share it.
 */
struct memtable_hint {
	uint64_t id;
	struct memtable_node *prev[MEMTABLE_MAX_HEIGHT];
	size_t lcp[MEMTABLE_MAX_HEIGHT];
};
/* initial-exec: see epoch_my_slot. */
static _Thread_local struct memtable_hint memtable_hint __attribute__((tls_model("initial-exec")));

/* One bucket per 128 bytes of capacity: about one node per bucket for
 * 100-byte values, at 6 % of the capacity in bucket memory. */
static size_t memtable_bucket_count(size_t capacity)
{
	size_t n = 1024;
	while (n < capacity / 128 && n < ((size_t)1 << 26))
		n <<= 1;
	return n;
}

int memtable_new(size_t capacity, memtable **out)
{
	int rc = 0;
	memtable *mt = NULL;
	if (!out)
		return error_set(CESIUM_EINVAL, "memtable_new: NULL out");
	*out = NULL;
	mt = mem_zalloc(sizeof(*mt));
	if (!mt) {
		rc = error_set(CESIUM_ENOMEM, "memtable: out of memory");
		goto out;
	}
	rc = arena_new(MEMTABLE_ARENA_BLOCK, &mt->arena);
	if (rc)
		goto out;
	size_t nb = memtable_bucket_count(capacity);
	mt->buckets = mem_calloc(nb, sizeof(*mt->buckets));
	if (!mt->buckets) {
		rc = error_set(CESIUM_ENOMEM, "memtable: out of memory for %zu hash buckets", nb);
		goto out;
	}
	mt->bucket_mask = nb - 1;
	mt->head = memtable_node_new(mt, MEMTABLE_MAX_HEIGHT, 0, 0);
	if (!mt->head) {
		rc = CESIUM_ENOMEM; /* error set */
		goto out;
	}
	atomic_init(&mt->refs, 1);
	atomic_init(&mt->entries, 0);
	atomic_init(&mt->height, 1);
	mt->id = atomic_fetch_add_explicit(&memtable_next_id, 1, memory_order_relaxed);
	*out = mt;
	mt = NULL;
out:
	if (mt) {
		arena_free(mt->arena);
		mem_free(mt->buckets);
		mem_free(mt);
	}
	return rc;
}

void memtable_ref(memtable *mt)
{
	atomic_fetch_add_explicit(&mt->refs, 1, memory_order_relaxed);
}

void memtable_unref(memtable *mt)
{
	if (!mt)
		return;
	if (atomic_fetch_sub_explicit(&mt->refs, 1, memory_order_acq_rel) != 1)
		return;
	arena_free(mt->arena);
	mem_free(mt->buckets);
	if (mt->home_release)
		mt->home_release(mt->home);
	mem_free(mt);
}

void memtable_hold(memtable *mt, void *home, void (*release)(void *home))
{
	assert(!mt->home_release);
	mt->home = home;
	mt->home_release = release;
}

static uint64_t memtable_hash(keys_slice nskey)
{
	return XXH3_64bits(nskey.data, nskey.len);
}

static _Atomic uint64_t *memtable_bucket(const memtable *mt, uint64_t hash)
{
	return &mt->buckets[hash & mt->bucket_mask];
}

/* One of the bucket word's 16 filter bits, from hash bits the bucket
 * index does not use (the index takes at most 26 low bits). */
static inline uint64_t memtable_filter_bit(uint64_t hash)
{
	return UINT64_C(1) << (MEMTABLE_ADDR_BITS + (hash >> 60));
}

static inline struct memtable_hentry *memtable_chain(uint64_t word)
{
	return (struct memtable_hentry *)(uintptr_t)(word & MEMTABLE_ADDR_MASK);
}

static bool memtable_node_is(const struct memtable_node *n, keys_slice nskey)
{
	keys_slice ik = memtable_node_ikey(n);
	return ik.len == nskey.len + KEYS_TRAILER_SIZE &&
	       memtable_lcp_bytes(ik.data, nskey.data, nskey.len, 0) == nskey.len;
}

/*
 * Points nskey's hash entry at n, its newest version, or pushes a new entry.
 * Acquire on loads and on a failed CAS, release on success: a reader that
 * reaches an entry or node through any chain sees its contents
 * (happens-before runs through every pusher in between). Two adds of one
 * new key racing may push two entries; readers consider every entry of
 * their key, so that only costs a few bytes.
 */
static int memtable_hash_add(memtable *mt, uint64_t hash, keys_slice nskey, struct memtable_node *n)
{
	_Atomic uint64_t *b = memtable_bucket(mt, hash);
	uint64_t word = atomic_load_explicit(b, memory_order_acquire);
	uint64_t bit = memtable_filter_bit(hash);
	for (struct memtable_hentry *e = word & bit ? memtable_chain(word) : NULL; e; e = e->next) {
		if (e->hash != hash)
			continue;
		struct memtable_node *cur = atomic_load_explicit(&e->node, memory_order_acquire);
		if (!memtable_node_is(cur, nskey))
			continue;
		uint64_t seq = keys_ikey_seq(memtable_node_ikey(n));
		while (keys_ikey_seq(memtable_node_ikey(cur)) < seq &&
		       !atomic_compare_exchange_weak_explicit(&e->node, &cur, n, memory_order_acq_rel,
		                                              memory_order_acquire))
			;
		return 0;
	}
	struct memtable_hentry *e =
	    arena_alloc(mt->arena, sizeof(*e), alignof(struct memtable_hentry));
	if (!e)
		return error_set(CESIUM_ENOMEM, "memtable: arena out of memory");
	if ((uintptr_t)e > MEMTABLE_ADDR_MASK) /* see MEMTABLE_ADDR_BITS */
		return error_set(CESIUM_ENOMEM,
		                 "memtable: memory at %p is above what a bucket can address",
		                 (void *)e);
	atomic_init(&e->node, n);
	e->hash = hash;
	do {
		e->next = memtable_chain(word);
	} while (!atomic_compare_exchange_weak_explicit(
	    b, &word, (uint64_t)(uintptr_t)e | (word & ~MEMTABLE_ADDR_MASK) | bit,
	    memory_order_acq_rel, memory_order_acquire));
	return 0;
}

/* Walks level from x, which sorts before t and shares lcp nskey bytes with
 * it, to the last node before t, and records where it stopped in *st.
 * descent: a search from the head, whose next level starts where this
 * one stops. */
static inline void memtable_splice(const struct memtable_target *t, struct memtable_node *x,
                                   size_t lcp, int level, bool descent, struct memtable_step *st)
{
	for (;;) {
		uint64_t link = memtable_link_load(x, level);
		if (descent && level > 0) {
			/* Where the search goes on if it goes down from x: the
			 * hint mostly decides that without a miss, so the next
			 * one is that node's, and starts now. */
			struct memtable_node *down = memtable_next(x, level - 1);
			if (down)
				__builtin_prefetch(&down->next[level - 1]);
		}
		size_t n_lcp = 0;
		uint64_t hint = 0;
		if (memtable_link_node(link) &&
		    memtable_step_cmp(t, lcp, link, &n_lcp, &hint) < 0) {
			x = memtable_link_node(link);
			lcp = n_lcp;
			continue;
		}
		*st = (struct memtable_step){x, link, lcp, hint};
		return;
	}
}

/* Whether t goes right after hint->prev[0], which then shares *lcp nskey
 * bytes with it: true for ascending inserts. Costs one comparison, with
 * the node this thread inserted last, and mostly none with its successor. */
static bool memtable_hint_fits(const memtable *mt, const struct memtable_hint *hint,
                               const struct memtable_target *t, size_t *lcp)
{
	if (hint->id != mt->id)
		return false;
	struct memtable_node *p = hint->prev[0];
	*lcp = 0;
	if (p != mt->head && memtable_cmp_lcp(p, t, 0, lcp) >= 0)
		return false;
	uint64_t link = memtable_link_load(p, 0);
	size_t n_lcp;
	uint64_t n_hint;
	return !memtable_link_node(link) || memtable_step_cmp(t, *lcp, link, &n_lcp, &n_hint) > 0;
}

/* Finds where t, of the given height, goes at levels top-1 .. 0, into
 * st: at every level below height, and above it only prev and prev_lcp,
 * which the next insert's hint starts from. */
static void memtable_search(memtable *mt, const struct memtable_target *t, int height, int top,
                            struct memtable_step *st)
{
	struct memtable_hint *hint = &memtable_hint;
	size_t lcp;
	if (memtable_hint_fits(mt, hint, t, &lcp)) {
		/* Every hint node sorts at or before hint->prev[0], hence before
		 * t, and is linked at its level: a valid start at each level.
		 * Sorted keys share with an earlier one the least of what each
		 * neighbour pair between them shares, so a hint node shares
		 * with t what it shared with the last key, or less. Above the
		 * new node's height it stays a valid start as it is: walking
		 * those levels forward would only move it nearer. */
		for (int level = top - 1; level >= 0; level--) {
			size_t l = hint->lcp[level] < lcp ? hint->lcp[level] : lcp;
			if (level >= height)
				st[level] = (struct memtable_step){hint->prev[level], 0, l, 0};
			else
				memtable_splice(t, hint->prev[level], l, level, false, &st[level]);
		}
		return;
	}
	struct memtable_node *x = mt->head;
	lcp = 0;
	/* A node reachable at level i+1 is already linked at level i (links
	 * go bottom up), so each level's search may start where the one above
	 * stopped. */
	for (int level = top - 1; level >= 0; level--) {
		memtable_splice(t, x, lcp, level, true, &st[level]);
		x = st[level].prev;
		lcp = st[level].prev_lcp;
	}
}

static int memtable_insert(memtable *mt, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                           keys_slice value, enum memtable_held how);

int memtable_add(memtable *mt, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                 keys_slice value)
{
	return memtable_insert(mt, seq, kind, nskey, value, MEMTABLE_COPIED);
}

int memtable_add_held(memtable *mt, uint64_t seq, keys_slice nskey, keys_slice value,
                      enum memtable_held how)
{
	if (!mt || !mt->home_release || how == MEMTABLE_COPIED)
		return error_set(CESIUM_EINVAL, "memtable_add_held: no home holds the value");
	return memtable_insert(mt, seq, KEYS_KIND_VALUE, nskey, value, how);
}

static int memtable_insert(memtable *mt, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                           keys_slice value, enum memtable_held how)
{
	bool held = how != MEMTABLE_COPIED;
	if (!mt || (!nskey.data && nskey.len))
		return error_set(CESIUM_EINVAL, "memtable_add: NULL argument");
	if (kind != KEYS_KIND_VALUE && kind != KEYS_KIND_DELETE)
		return error_set(CESIUM_EINVAL, "memtable_add: bad kind %d", (int)kind);
	if (seq > KEYS_MAX_SEQ)
		return error_set(CESIUM_EINVAL, "memtable_add: sequence %llu too large",
		                 (unsigned long long)seq);
	if (nskey.len + KEYS_TRAILER_SIZE > MEMTABLE_KEYLEN_MASK)
		return error_set(CESIUM_EINVAL, "memtable_add: key of %zu bytes too long",
		                 nskey.len);
	if (kind == KEYS_KIND_DELETE)
		value = keys_slice_of(NULL, 0);
	if (value.len >= MEMTABLE_VALUE_ALONE || (!value.data && value.len))
		return error_set(CESIUM_EINVAL, "memtable_add: bad value");

	/* The bucket is a cache miss of its own: start it now, so that it
	 * overlaps the skiplist descent instead of following it. */
	uint64_t hash = memtable_hash(nskey);
	__builtin_prefetch(memtable_bucket(mt, hash));
	int height = memtable_random_height();
	size_t klen = nskey.len + KEYS_TRAILER_SIZE;
	struct memtable_node *n =
	    memtable_node_new(mt, height, klen, held ? sizeof(value.data) : value.len);
	if (!n)
		return CESIUM_ENOMEM; /* error set */
	n->value_len = (uint32_t)value.len | (held ? MEMTABLE_VALUE_HELD : 0) |
	               (how == MEMTABLE_HELD_ALONE ? MEMTABLE_VALUE_ALONE : 0);
	uint8_t *kp = (uint8_t *)memtable_node_key(n, height);
	if (nskey.len)
		memcpy(kp, nskey.data, nskey.len);
	keys_put_u64le(kp + nskey.len, keys_trailer(seq, kind));
	if (held)
		memcpy(kp + klen, &value.data, sizeof(value.data));
	else if (value.len)
		memcpy(kp + klen, value.data, value.len);

	struct memtable_target t = { nskey, keys_trailer(seq, kind) };
	struct memtable_step st[MEMTABLE_MAX_HEIGHT];
	int top = atomic_load_explicit(&mt->height, memory_order_relaxed);
	while (height > top &&
	       !atomic_compare_exchange_weak_explicit(&mt->height, &top, height,
	                                              memory_order_relaxed, memory_order_relaxed))
		;
	if (height > top)
		top = height;
	memtable_search(mt, &t, height, top, st);
	for (int level = 0; level < height; level++) {
		for (;;) {
			struct memtable_step *s = &st[level];
			uint64_t expect = s->link;
			atomic_store_explicit(
			    &n->next[level],
			    memtable_link(memtable_link_node(expect), s->next_hint),
			    memory_order_relaxed);
			/* Release: a reader that reaches n through this link sees
			 * its key, value and links. */
			if (atomic_compare_exchange_strong_explicit(
			        &s->prev->next[level], &expect,
			        memtable_link(n, memtable_key_hint(nskey, s->prev_lcp)),
			        memory_order_release, memory_order_relaxed))
				break;
			/* Someone linked a node here first; the old prev still sorts
			 * before us, so search on from it. */
			memtable_splice(&t, s->prev, s->prev_lcp, level, false, s);
		}
	}
	struct memtable_hint *hint = &memtable_hint;
	hint->id = mt->id;
	for (int level = 0; level < top; level++) {
		hint->prev[level] = level < height ? n : st[level].prev;
		hint->lcp[level] = level < height ? SIZE_MAX : st[level].prev_lcp;
	}
	for (int level = top; level < MEMTABLE_MAX_HEIGHT; level++) {
		hint->prev[level] = mt->head;
		hint->lcp[level] = 0;
	}
	int rc = memtable_hash_add(mt, hash, nskey, n);
	if (rc)
		return rc;
	atomic_fetch_add_explicit(&mt->entries, 1, memory_order_relaxed);
	if (held)
		atomic_fetch_add_explicit(&mt->held_bytes, value.len, memory_order_relaxed);
	return 0;
}

/* First node >= t, or NULL. */
static struct memtable_node *memtable_find_ge(const memtable *mt, const struct memtable_target *t)
{
	struct memtable_step st = {mt->head, 0, 0, 0};
	for (int level = atomic_load_explicit(&((memtable *)mt)->height, memory_order_relaxed) - 1;
	     level >= 0; level--)
		memtable_splice(t, st.prev, st.prev_lcp, level, true, &st);
	return memtable_link_node(st.link);
}

int memtable_get(memtable *mt, keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                 keys_slice *value)
{
	if (!mt || !kind || !value || (!nskey.data && nskey.len))
		return error_set(CESIUM_EINVAL, "memtable_get: NULL argument");
	/* An empty table (the active one after a seal, in a read-only phase)
	 * answers without touching its buckets. Relaxed is enough: a write
	 * visible at snapshot_seq was counted before it was published. */
	if (atomic_load_explicit(&mt->entries, memory_order_relaxed) == 0)
		return CESIUM_ENOTFOUND;
	if (snapshot_seq > KEYS_MAX_SEQ)
		snapshot_seq = KEYS_MAX_SEQ;
	/* From each entry of nskey (one, unless adds raced), its newest
	 * version, then older ones at level 0 until one is at or below the
	 * snapshot. */
	const struct memtable_node *best = NULL;
	uint64_t best_seq = 0;
	uint64_t hash = memtable_hash(nskey);
	uint64_t word = atomic_load_explicit(memtable_bucket(mt, hash), memory_order_acquire);
	const struct memtable_hentry *e =
	    word & memtable_filter_bit(hash) ? memtable_chain(word) : NULL;
	for (; e; e = e->next) {
		if (e->hash != hash)
			continue;
		const struct memtable_node *n =
		    atomic_load_explicit(&((struct memtable_hentry *)e)->node, memory_order_acquire);
		if (!memtable_node_is(n, nskey))
			continue;
		while (n && memtable_node_is(n, nskey) &&
		       keys_ikey_seq(memtable_node_ikey(n)) > snapshot_seq)
			n = memtable_next(n, 0);
		if (!n || !memtable_node_is(n, nskey))
			continue;
		uint64_t seq = keys_ikey_seq(memtable_node_ikey(n));
		if (!best || seq > best_seq) {
			best = n;
			best_seq = seq;
		}
	}
	if (!best)
		return CESIUM_ENOTFOUND;
	*kind = keys_ikey_kind(memtable_node_ikey(best));
	*value = memtable_node_value(best);
	return 0;
}

size_t memtable_memory_usage(const memtable *mt)
{
	return mt ? arena_memory_usage(mt->arena) + (mt->bucket_mask + 1) * sizeof(*mt->buckets)
	          : 0;
}

size_t memtable_held_bytes(const memtable *mt)
{
	return mt ? atomic_load_explicit(&((memtable *)mt)->held_bytes, memory_order_relaxed) : 0;
}

uint64_t memtable_entries(const memtable *mt)
{
	return mt ? atomic_load_explicit(&((memtable *)mt)->entries, memory_order_relaxed) : 0;
}

struct memtable_iter {
	iter base;
	memtable *mt;
	struct memtable_node *node; /* NULL: invalid */
};

static void memtable_iter_seek(iter *it, keys_slice ikey)
{
	struct memtable_iter *mi = (struct memtable_iter *)it;
	struct memtable_target t;
	if (ikey.len < KEYS_TRAILER_SIZE) {
		/* Not an internal key: treat it as an nskey, before all of its
		 * versions. */
		t = (struct memtable_target){ ikey, UINT64_MAX };
	} else {
		t = (struct memtable_target){ keys_ikey_nskey(ikey),
			                      keys_get_u64le(ikey.data + ikey.len -
			                                     KEYS_TRAILER_SIZE) };
	}
	mi->node = memtable_find_ge(mi->mt, &t);
}

static void memtable_iter_seek_first(iter *it)
{
	struct memtable_iter *mi = (struct memtable_iter *)it;
	mi->node = memtable_next(mi->mt->head, 0);
}

static void memtable_iter_next(iter *it)
{
	struct memtable_iter *mi = (struct memtable_iter *)it;
	if (mi->node)
		mi->node = memtable_next(mi->node, 0);
}

static bool memtable_iter_valid(const iter *it)
{
	return ((const struct memtable_iter *)it)->node != NULL;
}

static keys_slice memtable_iter_key(const iter *it)
{
	const struct memtable_iter *mi = (const struct memtable_iter *)it;
	return mi->node ? memtable_node_ikey(mi->node) : keys_slice_of(NULL, 0);
}

static keys_slice memtable_iter_value(const iter *it)
{
	const struct memtable_iter *mi = (const struct memtable_iter *)it;
	return mi->node ? memtable_node_value(mi->node) : keys_slice_of(NULL, 0);
}

static int memtable_iter_status(const iter *it)
{
	(void)it;
	return 0;
}

static void memtable_iter_destroy(iter *it)
{
	struct memtable_iter *mi = (struct memtable_iter *)it;
	memtable_unref(mi->mt);
	mem_free(mi);
}

static const struct iter_ops memtable_iter_ops = {
	.seek = memtable_iter_seek,
	.seek_first = memtable_iter_seek_first,
	.next = memtable_iter_next,
	.valid = memtable_iter_valid,
	.key = memtable_iter_key,
	.value = memtable_iter_value,
	.status = memtable_iter_status,
	.destroy = memtable_iter_destroy,
};

enum memtable_held memtable_iter_held(const iter *it)
{
	assert(it->ops == &memtable_iter_ops);
	const struct memtable_iter *mi = (const struct memtable_iter *)it;
	uint32_t flags = mi->node ? mi->node->value_len & MEMTABLE_VALUE_FLAGS : 0;
	return !(flags & MEMTABLE_VALUE_HELD)   ? MEMTABLE_COPIED
	       : (flags & MEMTABLE_VALUE_ALONE) ? MEMTABLE_HELD_ALONE
	                                        : MEMTABLE_HELD;
}

void *memtable_home(const memtable *mt)
{
	return mt->home;
}

int memtable_iter_new(memtable *mt, iter **out)
{
	if (!mt || !out)
		return error_set(CESIUM_EINVAL, "memtable_iter_new: NULL argument");
	*out = NULL;
	struct memtable_iter *mi = mem_zalloc(sizeof(*mi));
	if (!mi)
		return error_set(CESIUM_ENOMEM, "memtable: out of memory for iterator");
	mi->base.ops = &memtable_iter_ops;
	memtable_ref(mt);
	mi->mt = mt;
	mi->node = NULL;
	*out = &mi->base;
	return 0;
}
