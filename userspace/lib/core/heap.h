/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * heap.h - the heap in transparent huge pages.
 *
 * A page fault is dear on a virtual machine (under nested paging each one
 * costs the hypervisor a turn): loading 10,000 services faults some 60 MB
 * of heap in, 4 KiB at a time, a seventh of sluice-control's CPU for it.
 * In huge pages that is 512 times fewer faults. glibc advises huge pages
 * only when GLIBC_TUNABLES says so when the process starts
 * (glibc.malloc.hugetlb=1), which a daemon cannot count on; so the heap
 * grows in large steps (M_TOP_PAD) and what it has grown is advised
 * (MADV_HUGEPAGE) at the next call of heap_huge(): of a 64 MiB step,
 * all but what was touched before that call. Where the kernel has no
 * transparent huge pages, or has them "never", this changes nothing.
 */
#ifndef SL_HEAP_H
#define SL_HEAP_H

/* Once, early in main(): the heap grows by HEAP_STEP at least, and where
 * it stands now is the start of what heap_huge() advises. */
#define HEAP_STEP (64u << 20)
void heap_huge_init(void);
/* Advise what the heap grew since the last call: one brk(2), and one
 * madvise(2) when it grew. Cheap enough for every turn of an event loop. */
void heap_huge(void);

#endif /* SL_HEAP_H */
