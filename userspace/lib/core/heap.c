// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* heap.c - the heap in transparent huge pages (heap.h). */
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/core/heap.h"

static uintptr_t advised;   /* the heap is advised up to here; 0: not set up */

static uintptr_t heap_top(void)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);

	return ((uintptr_t)sbrk(0) + pg - 1) & ~(pg - 1);
}

void heap_huge_init(void)
{
	mallopt(M_TOP_PAD, HEAP_STEP);
	advised = heap_top();
}

void heap_huge(void)
{
	uintptr_t top;

	if (!advised)
		return;
	top = heap_top();
	/* advice is a property of the mapping: what was advised and trimmed
	 * away is gone, and grows again unadvised */
	if (top > advised)
		madvise((void *)advised, top - advised, MADV_HUGEPAGE);
	advised = top;
}
