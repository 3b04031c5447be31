/* FNV-1a, 64-bit: for the registry's buckets and the kernel mounts' keys. */
#ifndef NFSV3_HASH_H
#define NFSV3_HASH_H

#include <stdint.h>

#define FNV1A_INIT 14695981039346656037ULL

/* Continue hash h over the bytes of text (up to its NUL). */
static inline uint64_t fnv1a(uint64_t h, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

#endif
