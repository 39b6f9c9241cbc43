/*
 * vm.c — page-level memory for the ledger engine (see vm.h for why).
 *
 * Owner: ledger. Sizes are rounded up to whole pages here, so callers
 * pass the byte counts they asked for and get them back consistently.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include "vm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define VM_USE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VM_USE_MALLOC 1
#endif
#endif

#ifdef VM_USE_MALLOC

void *ht_vm_alloc_zeroed(size_t bytes)
{
	return calloc(1, bytes ? bytes : 1);
}

void *ht_vm_resize(void *p, size_t old_bytes, size_t new_bytes)
{
	(void)old_bytes;
	return realloc(p, new_bytes ? new_bytes : 1);
}

void ht_vm_free(void *p, size_t bytes)
{
	(void)bytes;
	free(p);
}

#else

/* Huge pages only pay off for blocks that span several of them. */
#define VM_HUGE_BYTES_MIN (4u << 20)

static size_t page_round(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (bytes == 0)
		bytes = 1;
	if (bytes > SIZE_MAX - page)
		return 0;
	return (bytes + page - 1) / page * page;
}

static void advise(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	if (bytes >= VM_HUGE_BYTES_MIN)
		(void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
}

void *ht_vm_alloc_zeroed(size_t bytes)
{
	size_t n = page_round(bytes);
	if (!n)
		return NULL;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	advise(p, n);
	return p;
}

void *ht_vm_resize(void *p, size_t old_bytes, size_t new_bytes)
{
	if (!p)
		return ht_vm_alloc_zeroed(new_bytes);
	size_t o = page_round(old_bytes), n = page_round(new_bytes);
	if (!n)
		return NULL;
	if (n <= o)
		return p;
	void *q = mremap(p, o, n, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return NULL;
	advise(q, n);
	return q;
}

void ht_vm_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, page_round(bytes));
}

#endif
