/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snapdelta.h - a node snapshot (docs/snapshot.md) as a set of items, and
 * the deltas between two such sets that sluice-control pushes to agents
 * (docs/control-plane.md, "Incremental push").
 *
 * The indexed form of a snapshot is a JSON object with one member per
 * section (the version is not a section):
 *   - an array section becomes an object from item key to item, where an
 *     item's key is the hex of the first 16 bytes of the SHA-256 of its
 *     canonical text (compact, sorted keys); the n-th (n >= 2) repeat of
 *     one item in one array gets "#n" appended;
 *   - any other section is kept as its value, which may not be an object
 *     (no section of a snapshot is one).
 * Item order carries no meaning in a snapshot (services are keyed by VIP,
 * port and protocol; workloads by address; policy entries by their match),
 * so a set of items is the snapshot.
 *
 * A delta takes one indexed snapshot to another:
 *   {"SECTION": {"set": {KEY: ITEM, ...}, "del": [KEY, ...]}, ...   arrays
 *    "SECTION": {"value": VALUE} | {"drop": true}, ...}              others
 * Sections it does not name are unchanged. Keys are computed by the sender
 * only; a receiver applies what it is given.
 *
 * Contract: no function keeps a reference to its arguments beyond what it
 * returns; items are shared by reference (jansson's counts), never copied.
 * Functions that can fail return 0 or -errno with a message in err.
 */
#ifndef SL_WIRE_SNAPDELTA_H
#define SL_WIRE_SNAPDELTA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Item keys are 32 hex digits, plus "#n" for a repeat. */
#define SD_KEY_MAX 48

/*
 * The indexed form of snapshot `snap` (its "version" member is left out).
 * pool: NULL, or an object KEY -> item that the caller keeps across calls:
 * an item already there is taken from it (so that equal items of several
 * nodes are one object), a new one is added. NULL on allocation failure
 * or for a section that is an object.
 */
json_t *sd_index(const json_t *snap, json_t *pool);

/* The key of one item (32 hex digits). 0 or -ENOMEM. */
int sd_item_key(const json_t *item, char key[SD_KEY_MAX]);

/* Add `item` to an indexed section `set` under `key` (its sd_item_key()),
 * or under KEY#n if key is taken (the n-th repeat). 0 or -ENOMEM. */
int sd_set_add(json_t *set, const char *key, json_t *item);

/* sd_index() with some sections already indexed: `given` maps a section
 * name to its indexed form, taken as it is (shared, not copied). */
json_t *sd_index_with(const json_t *snap, json_t *pool, const json_t *given);

/* Drop from `pool` the items nothing else refers to any more. */
void sd_pool_prune(json_t *pool);

/* The delta from `from` to `to` (both indexed; `from` NULL: the empty
 * snapshot); an empty object when they are equal; NULL on allocation
 * failure. *items: the number of items and sections it sets or drops. */
json_t *sd_delta(const json_t *from, const json_t *to, size_t *items);

/* The parts sd_delta_shared() made for set sections that more than one
 * index holds (the last SD_MEMO_MAX), with references to both sets: nodes
 * whose snapshots share a section's sets (sd_index_with: the same json_t
 * before and after) get the same part without comparing them again.
 * Zeroed: empty; sd_memo_free() at the end. */
#define SD_MEMO_MAX 8
struct sd_memo {
	struct {
		json_t *from, *to, *part;
		size_t items;
	} e[SD_MEMO_MAX];
	unsigned int next;         /* the entry replaced next */
};
json_t *sd_delta_shared(const json_t *from, const json_t *to, size_t *items, struct sd_memo *m);
void sd_memo_free(struct sd_memo *m);
/* What the memo answers for the sets from -> to: part (a section's
 * {set, del}, or json null for no change) and its item count. For a set
 * changed in place (from == to), whose part its owner knows. */
void sd_memo_put(struct sd_memo *m, json_t *from, json_t *to, json_t *part, size_t items);

/*
 * Apply `delta` to the indexed snapshot `idx`, in place. Checked first,
 * then done: on error idx is unchanged. undo: if not NULL, receives the
 * delta that takes idx back (for a snapshot the data plane then refuses).
 */
int sd_apply(json_t *idx, const json_t *delta, json_t **undo, char *err, size_t errlen);

/* The snapshot of an indexed form, with "version" first. NULL on
 * allocation failure. */
json_t *sd_snapshot(const json_t *idx, uint64_t version);

/*
 * Packed items: an item may be held as a JSON string of its compact text
 * instead of as the object itself, which costs whoever keeps a large
 * indexed snapshot (an agent, the control plane's compiled services)
 * a tenth of the memory (jansson spends some
 * 700 bytes per backend object). Keys do not change (they are computed
 * by the sender from the item, never from its packed form); sd_apply
 * treats items as opaque, so a packed index takes packed deltas.
 * snapshot_from_json() (lib/node/snapshot.h) decodes packed items.
 *
 * sd_packed: item packed (a new reference; a packed item is itself),
 * NULL on allocation failure.
 * sd_pack: pack every item of the indexed snapshot idx, in place.
 * sd_pack_delta: pack every item a delta sets, in place.
 * Both 0 or -ENOMEM (items packed so far stay packed: still valid).
 */
json_t *sd_packed(json_t *item);
/* An item's key and its packed form from one text: the packed form is
 * the canonical text (keys sorted). 0, or -ENOMEM with *packed NULL. */
int sd_item_key_packed(const json_t *item, char key[SD_KEY_MAX], json_t **packed);
int sd_pack(json_t *idx);
int sd_pack_delta(json_t *delta);

/* The text of the snapshot of an indexed form (packed or not), compact,
 * "version" first: what sd_snapshot() would dump, without building the
 * document. *len (if not NULL) its length. NULL on allocation failure. */
char *sd_text(const json_t *idx, uint64_t version, size_t *len);

/* sd_text() with the sections named in `empty` (a NULL-terminated list)
 * written as [], whatever idx holds for them; a named section idx lacks
 * stays absent. For a reader that uses none of those sections: the node
 * proxy reads no services, which are most of a snapshot. */
char *sd_text_without(const json_t *idx, uint64_t version, const char *const *empty,
		      size_t *len);

/* The compact text of `delta` (packed items or not): what json_dumps()
 * would write of it unpacked. *len (if not NULL) its length. NULL on
 * allocation failure. */
char *sd_delta_text(const json_t *delta, size_t *len);

#endif /* SL_WIRE_SNAPDELTA_H */
