/*
 * vm.h — page-level memory for the ledger engine's large arrays.
 *
 * Owner: ledger. The engine's arrays only grow, and on the machines we run
 * on a fresh page costs microseconds (first touch traps to the
 * hypervisor), far more than anything the engine computes. So arrays are
 * mapped directly, grown with mremap (pages move, nothing is copied or
 * touched again) and advised to use transparent huge pages. Under
 * AddressSanitizer plain malloc/realloc is used instead, so the tests keep
 * their bounds checking. Never used for anything freed and re-allocated
 * in a loop.
 */
#ifndef HUITONG_LEDGER_VM_H
#define HUITONG_LEDGER_VM_H

#include <stddef.h>

/* Zero-filled block of at least `bytes`; NULL on failure. */
void *ht_vm_alloc_zeroed(size_t bytes);
/* Grow (or allocate, when p is NULL) a block from old_bytes to new_bytes
 * (old contents kept, the rest unspecified); NULL on failure with p
 * untouched. */
void *ht_vm_resize(void *p, size_t old_bytes, size_t new_bytes);
/* Free a block of `bytes` (as passed to alloc/resize); accepts NULL. */
void ht_vm_free(void *p, size_t bytes);

#endif
