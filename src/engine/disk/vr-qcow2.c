/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * qcow2 v2/v3 (see QEMU's docs/interop/qcow2.txt).
 *
 * Locking: one mutex per image (Qcow2.lock) serializes every request; the L1 table, the
 * refcount table, both caches, the allocator and the decompression buffer live under it.
 * The backing file is a separate VrDisk with its own lock (taken inside ours, never the
 * other way round).
 *
 * Write ordering (crash safety):
 *   - a new data cluster gets its refcount (written through) and its contents before the L2
 *     entry pointing at it changes; L2 tables are written back (after an fdatasync) only on
 *     flush or cache eviction;
 *   - an L1 entry is written only on flush, after the L2 tables were written and synced;
 *   - a new refcount block is written and synced before the refcount table points at it; a
 *     grown refcount table is written and synced before the header points at it;
 *   - clusters dropped by discard/overwrite are freed only after the L2 tables no longer
 *     referencing them are on disk (Qcow2.pending_free, processed by flush);
 *   - a write to a cluster or L2 table a snapshot shares (refcount > 1, COPIED clear) copies
 *     it first; the shared one loses its reference like an overwritten cluster above;
 *   - snapshot create/apply/delete and L1 growth are transactions (Txn, below): new tables
 *     and shadow copies of the refcount blocks go to free clusters, then one header write
 *     switches to them.
 * A crash at any point therefore leaves at worst leaked clusters.
 */

#include "vr-disk-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <zlib.h>

#define QCOW2_MAGIC              0x514649fbu
#define L1E_OFFSET_MASK          UINT64_C (0x00fffffffffffe00)
#define L2E_OFFSET_MASK          UINT64_C (0x00fffffffffffe00)
#define REFT_OFFSET_MASK         UINT64_C (0xfffffffffffffe00)
#define OFLAG_COPIED             (UINT64_C (1) << 63)
#define OFLAG_COMPRESSED         (UINT64_C (1) << 62)
#define OFLAG_ZERO               UINT64_C (1)

#define INCOMPAT_DIRTY           (UINT64_C (1) << 0)
#define INCOMPAT_CORRUPT         (UINT64_C (1) << 1)
#define INCOMPAT_DATA_FILE       (UINT64_C (1) << 2)
#define INCOMPAT_COMPRESSION     (UINT64_C (1) << 3)
#define INCOMPAT_EXTL2           (UINT64_C (1) << 4)
#define INCOMPAT_SUPPORTED       (INCOMPAT_DIRTY | INCOMPAT_CORRUPT)
#define COMPAT_LAZY_REFCOUNTS    (UINT64_C (1) << 0)

#define EXT_END                  0x00000000u
#define EXT_BACKING_FORMAT       0xe2792acau
#define EXT_FEATURE_TABLE        0x6803f857u

#define MAX_L1_BYTES             (32u << 20)
#define MAX_REFTABLE_BYTES       (8u << 20)
#define MAX_SNAPSHOTS            65536u
#define MAX_SNAPSHOT_TABLE_BYTES (64u << 20)  /* QEMU's limit too */
#define MAX_SNAPSHOT_EXTRA       1024u        /* idem */
#define SNAPSHOT_EXTRA_KNOWN     24u          /* vm_state_size_large, disk_size, icount */
#define MAX_SNAPSHOT_ID_LEN      127u         /* what QEMU's tools keep (QEMUSnapshotInfo) */
#define MAX_SNAPSHOT_NAME_LEN    255u
#define MAX_PENDING_FREE         4096u

typedef struct
{
  uint64_t  offset;  /* 0: empty slot */
  uint8_t  *data;
  bool      dirty;
  uint64_t  lru;
} CacheEntry;

typedef struct
{
  CacheEntry *entries;
  unsigned    n;
  uint64_t    tick;
} Cache;

typedef struct
{
  uint64_t offset;
  uint64_t len;
} Extent;

/* One entry of the snapshot table. */
typedef struct
{
  uint64_t  l1_offset;
  uint32_t  l1_size;
  char     *id;
  char     *name;
  uint32_t  date_sec;
  uint32_t  date_nsec;
  uint64_t  vm_clock_nsec;
  uint64_t  vm_state_size;
  uint64_t  disk_size;
  uint64_t  icount;
  uint8_t  *unknown_extra;     /* extra data past the fields we know, kept as it is */
  uint32_t  unknown_extra_len;
} Snap;

typedef struct
{
  GMutex    lock;
  VrDisk   *disk;
  uint32_t  version;
  uint32_t  cluster_bits;
  uint64_t  cluster_size;
  uint32_t  l2_bits;
  uint64_t  l2_entries;
  uint32_t  refcount_order;
  uint64_t  rb_entries;       /* refcounts per refcount block */
  uint64_t  refcount_max;
  uint64_t  incompat;
  uint64_t  compat;
  uint64_t  autoclear;
  uint32_t  header_length;
  uint32_t  crypt_method;

  uint64_t  l1_offset;
  uint32_t  l1_size;
  uint64_t *l1;
  uint8_t  *l1_dirty;
  bool      any_l1_dirty;

  uint64_t  rt_offset;
  uint32_t  rt_clusters;
  uint64_t  rt_size;          /* entries */
  uint64_t *rt;

  uint32_t  nb_snapshots;
  uint64_t  snapshots_offset;
  uint64_t  snapshots_size;   /* bytes of the table */
  Snap     *snaps;            /* nb_snapshots entries (NULL if the table could not be read) */
  char     *snapshots_error;  /* why, for metadata-only opens (check, info) */

  char     *backing_name;
  char     *backing_full;
  char     *backing_fmt;
  VrDisk   *backing;

  Cache     l2_cache;
  Cache     rb_cache;
  uint64_t  file_end;         /* bytes: max of the file size and every allocation */
  uint64_t  free_hint;        /* cluster index where the free cluster search starts */
  GArray   *pending_free;     /* Extent */

  uint32_t  csize_shift;
  uint64_t  csize_mask;
  uint64_t  coffset_mask;
  uint8_t  *cbuf;             /* one decompressed cluster */
  uint64_t  cbuf_key;         /* its compressed offset, or UINT64_MAX */
  uint8_t  *zbuf;
  bool      broken;           /* inconsistent metadata found while writing: refuse writes */
} Qcow2;

static inline uint64_t
be64_at (const void *p)
{
  uint64_t v;

  memcpy (&v, p, 8);
  return GUINT64_FROM_BE (v);
}

static inline uint32_t
be32_at (const void *p)
{
  uint32_t v;

  memcpy (&v, p, 4);
  return GUINT32_FROM_BE (v);
}

static inline void
put_be64 (void *p, uint64_t v)
{
  v = GUINT64_TO_BE (v);
  memcpy (p, &v, 8);
}

static inline void
put_be32 (void *p, uint32_t v)
{
  v = GUINT32_TO_BE (v);
  memcpy (p, &v, 4);
}

static inline void
put_be16 (void *p, uint16_t v)
{
  v = GUINT16_TO_BE (v);
  memcpy (p, &v, 2);
}

G_GNUC_PRINTF (4, 5) static bool
fail (Qcow2       *q,
      GError     **error,
      int          code,
      const char  *fmt,
      ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, VR_DISK_ERROR, code, "%s: %s", q->disk->filename, msg);
  return false;
}

static bool
pread_exact (Qcow2     *q,
             void      *buf,
             size_t     len,
             uint64_t   offset,
             GError   **error)
{
  size_t done = 0;
  g_autoptr (GError) local_error = NULL;

  if (!vr_disk_full_pread (q->disk->fd, buf, len, offset, &done, &local_error))
    return fail (q, error, VR_DISK_ERROR_IO, "%s", local_error->message);
  if (done < len)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 metadata at 0x%" G_GINT64_MODIFIER "x lies past the end of the file",
                 offset);
  return true;
}

static bool
pwrite_all (Qcow2       *q,
            const void  *buf,
            size_t       len,
            uint64_t     offset,
            GError     **error)
{
  g_autoptr (GError) local_error = NULL;

  if (!vr_disk_full_pwrite (q->disk->fd, buf, len, offset, &local_error))
    return fail (q, error, local_error->code, "%s", local_error->message);
  if (offset + len > q->file_end)
    q->file_end = offset + len;
  return true;
}

/* Whether [offset, offset + len) lies inside the file. */
static bool
in_file (Qcow2    *q,
         uint64_t  offset,
         uint64_t  len)
{
  return offset <= q->file_end && len <= q->file_end - offset;
}

/* Caches */

static void
cache_init (Cache    *c,
            unsigned  n,
            uint64_t  size)
{
  c->n = n;
  c->entries = g_new0 (CacheEntry, n);
  for (unsigned i = 0; i < n; i++)
    c->entries[i].data = vr_disk_alloc_aligned (size);
}

static void
cache_clear (Cache *c)
{
  for (unsigned i = 0; i < c->n; i++)
    free (c->entries[i].data);
  g_clear_pointer (&c->entries, g_free);
  c->n = 0;
}

static void
cache_invalidate (Cache *c)
{
  for (unsigned i = 0; i < c->n; i++)
    {
      c->entries[i].offset = 0;
      c->entries[i].dirty = false;
    }
}

static bool
l2_writeback_all (Qcow2   *q,
                  GError **error)
{
  bool any = false;

  for (unsigned i = 0; i < q->l2_cache.n; i++)
    any |= q->l2_cache.entries[i].dirty;
  if (!any)
    return true;
  if (!vr_disk_fdatasync (q->disk, q->disk->fd, error))
    return false;
  for (unsigned i = 0; i < q->l2_cache.n; i++)
    {
      CacheEntry *e = &q->l2_cache.entries[i];

      if (!e->dirty)
        continue;
      if (!pwrite_all (q, e->data, q->cluster_size, e->offset, error))
        return false;
      e->dirty = false;
    }
  return true;
}

/* Returns the cached table at offset (read from the file unless fresh, then zeroed). */
static uint8_t *
cache_get (Qcow2       *q,
           Cache       *c,
           uint64_t     offset,
           bool         fresh,
           const char  *what,
           GError     **error)
{
  CacheEntry *victim = NULL;

  for (unsigned i = 0; i < c->n; i++)
    if (c->entries[i].offset == offset)
      {
        c->entries[i].lru = ++c->tick;
        if (fresh)
          {
            memset (c->entries[i].data, 0, q->cluster_size);
            c->entries[i].dirty = true;
          }
        return c->entries[i].data;
      }

  if (!fresh)
    {
      if (offset == 0 || (offset & (q->cluster_size - 1)) != 0)
        {
          fail (q, error, VR_DISK_ERROR_CORRUPT,
                "qcow2 %s offset 0x%" G_GINT64_MODIFIER "x is not cluster aligned", what,
                offset);
          return NULL;
        }
      if (!in_file (q, offset, q->cluster_size))
        {
          fail (q, error, VR_DISK_ERROR_CORRUPT,
                "qcow2 %s at 0x%" G_GINT64_MODIFIER "x lies past the end of the file", what,
                offset);
          return NULL;
        }
    }

  for (unsigned i = 0; i < c->n; i++)
    if (victim == NULL || c->entries[i].offset == 0 || c->entries[i].lru < victim->lru)
      {
        victim = &c->entries[i];
        if (victim->offset == 0)
          break;
      }
  if (victim->dirty)
    {
      /* The data and refcounts this table points at must be on disk before it. */
      if (!vr_disk_fdatasync (q->disk, q->disk->fd, error)
          || !pwrite_all (q, victim->data, q->cluster_size, victim->offset, error))
        return NULL;
      victim->dirty = false;
    }
  victim->offset = 0;
  if (fresh)
    {
      memset (victim->data, 0, q->cluster_size);
      victim->dirty = true;
    }
  else if (!pread_exact (q, victim->data, q->cluster_size, offset, error))
    return NULL;
  victim->offset = offset;
  victim->lru = ++c->tick;
  return victim->data;
}

static void
cache_mark_dirty (Cache    *c,
                  uint64_t  offset)
{
  for (unsigned i = 0; i < c->n; i++)
    if (c->entries[i].offset == offset)
      c->entries[i].dirty = true;
}

/* Refcounts */

static uint64_t
rb_get (Qcow2         *q,
        const uint8_t *block,
        uint64_t       i)
{
  switch (q->refcount_order)
    {
    case 0: return (block[i / 8] >> (i % 8)) & 1;
    case 1: return (block[i / 4] >> (2 * (i % 4))) & 3;
    case 2: return (block[i / 2] >> (4 * (i % 2))) & 15;
    case 3: return block[i];
    case 4: return ((uint64_t) block[2 * i] << 8) | block[2 * i + 1];
    case 5: return be32_at (block + 4 * i);
    default: return be64_at (block + 8 * i);
    }
}

/* Sets entry i; returns the byte range to write through. */
static void
rb_set (Qcow2    *q,
        uint8_t  *block,
        uint64_t  i,
        uint64_t  v,
        uint64_t *byte_off,
        uint64_t *byte_len)
{
  unsigned bits = 1u << q->refcount_order;

  if (bits < 8)
    {
      unsigned per = 8 / bits, shift = (unsigned) (i % per) * bits;
      uint8_t mask = (uint8_t) (((1u << bits) - 1) << shift);

      block[i / per] = (uint8_t) ((block[i / per] & ~mask) | ((v << shift) & mask));
      *byte_off = i / per;
      *byte_len = 1;
      return;
    }
  *byte_off = i * (bits / 8);
  *byte_len = bits / 8;
  switch (bits)
    {
    case 8: block[i] = (uint8_t) v; break;
    case 16: put_be16 (block + 2 * i, (uint16_t) v); break;
    case 32: put_be32 (block + 4 * i, (uint32_t) v); break;
    default: put_be64 (block + 8 * i, v); break;
    }
}

static bool
rt_block_offset (Qcow2     *q,
                 uint64_t   rt_index,
                 uint64_t  *offset,
                 GError   **error)
{
  uint64_t e;

  *offset = 0;
  if (rt_index >= q->rt_size)
    return true;
  e = q->rt[rt_index] & REFT_OFFSET_MASK;
  if ((e & (q->cluster_size - 1)) != 0)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 refcount block offset 0x%" G_GINT64_MODIFIER "x is not cluster aligned",
                 e);
  *offset = e;
  return true;
}

static bool
get_refcount (Qcow2     *q,
              uint64_t   cluster,
              uint64_t  *refcount,
              GError   **error)
{
  uint64_t boff;
  uint8_t *block;

  if (!rt_block_offset (q, cluster / q->rb_entries, &boff, error))
    return false;
  if (boff == 0)
    {
      *refcount = 0;
      return true;
    }
  block = cache_get (q, &q->rb_cache, boff, false, "refcount block", error);
  if (block == NULL)
    return false;
  *refcount = rb_get (q, block, cluster % q->rb_entries);
  return true;
}

/* Sets the refcount of a cluster whose refcount block exists. */
static bool
set_refcount_in_block (Qcow2     *q,
                       uint64_t   boff,
                       uint64_t   cluster,
                       uint64_t   value,
                       GError   **error)
{
  uint8_t *block = cache_get (q, &q->rb_cache, boff, false, "refcount block", error);
  uint64_t off, len;

  if (block == NULL)
    return false;
  rb_set (q, block, cluster % q->rb_entries, value, &off, &len);
  return pwrite_all (q, block + off, len, boff + off, error);
}

static bool
is_metadata_cluster (Qcow2    *q,
                     uint64_t  cluster)
{
  uint64_t off = cluster << q->cluster_bits;

  if (cluster == 0)
    return true;
  if (q->l1_size > 0 && off + q->cluster_size > q->l1_offset
      && off < q->l1_offset + (uint64_t) q->l1_size * 8)
    return true;
  if (off + q->cluster_size > q->rt_offset
      && off < q->rt_offset + ((uint64_t) q->rt_clusters << q->cluster_bits))
    return true;
  return false;
}

/* First cluster index >= start with refcount 0. */
static bool
find_free (Qcow2     *q,
           uint64_t   start,
           uint64_t  *out,
           GError   **error)
{
  uint64_t idx = start;

  for (;;)
    {
      uint64_t rt_index = idx / q->rb_entries, boff;
      const uint8_t *block;

      if (!rt_block_offset (q, rt_index, &boff, error))
        return false;
      if (boff == 0)
        break;
      block = cache_get (q, &q->rb_cache, boff, false, "refcount block", error);
      if (block == NULL)
        return false;
      for (uint64_t j = idx % q->rb_entries; j < q->rb_entries; j++)
        if (rb_get (q, block, j) == 0)
          {
            *out = rt_index * q->rb_entries + j;
            return true;
          }
      idx = (rt_index + 1) * q->rb_entries;
    }
  *out = idx;
  return true;
}

static bool grow_refcount_table (Qcow2 *q, uint64_t min_entries, GError **error);

/* Allocates one cluster (refcount 1, written through); returns its host offset. */
static bool
alloc_cluster (Qcow2     *q,
               uint64_t  *offset,
               GError   **error)
{
  for (int guard = 0; guard < 64; guard++)
    {
      uint64_t idx, rt_index, boff;

      if (!find_free (q, q->free_hint, &idx, error))
        return false;
      if (idx >= (UINT64_C (1) << (56 - q->cluster_bits)))
        return fail (q, error, VR_DISK_ERROR_NO_SPACE, "qcow2 image is full (offset limit)");
      if (is_metadata_cluster (q, idx))
        {
          q->broken = true;
          return fail (q, error, VR_DISK_ERROR_CORRUPT,
                       "qcow2 refcounts are inconsistent: metadata cluster 0x%"
                       G_GINT64_MODIFIER "x is marked free; run “vireo-img check -r all”",
                       idx << q->cluster_bits);
        }
      rt_index = idx / q->rb_entries;
      if (rt_index >= q->rt_size)
        {
          if (!grow_refcount_table (q, rt_index + 1, error))
            return false;
          continue;
        }
      if (!rt_block_offset (q, rt_index, &boff, error))
        return false;
      if (boff == 0)
        {
          /* A new refcount block, placed at idx itself and covering itself. */
          uint8_t *block = cache_get (q, &q->rb_cache, idx << q->cluster_bits, true, NULL,
                                      error);
          uint64_t o, l, be;

          if (block == NULL)
            return false;
          for (unsigned i = 0; i < q->rb_cache.n; i++)
            q->rb_cache.entries[i].dirty = false;
          rb_set (q, block, idx % q->rb_entries, 1, &o, &l);
          if (!pwrite_all (q, block, q->cluster_size, idx << q->cluster_bits, error)
              || !vr_disk_fdatasync (q->disk, q->disk->fd, error))
            return false;
          be = GUINT64_TO_BE (idx << q->cluster_bits);
          if (!pwrite_all (q, &be, 8, q->rt_offset + rt_index * 8, error))
            return false;
          q->rt[rt_index] = idx << q->cluster_bits;
          q->free_hint = idx + 1;
          continue;
        }
      if (!set_refcount_in_block (q, boff, idx, 1, error))
        return false;
      q->free_hint = idx + 1;
      *offset = idx << q->cluster_bits;
      if (*offset + q->cluster_size > q->file_end)
        q->file_end = *offset + q->cluster_size;
      return true;
    }
  return fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 cluster allocation does not converge");
}

/*
 * Grows the refcount table to at least min_entries. The new table and the refcount blocks
 * it needs for itself are placed at the end of the file.
 */
static bool
grow_refcount_table (Qcow2     *q,
                     uint64_t   min_entries,
                     GError   **error)
{
  uint64_t cs = q->cluster_size;
  uint64_t tail = (q->file_end + cs - 1) >> q->cluster_bits;
  uint64_t new_entries, nt = 0, nb = 0;
  g_autofree uint64_t *new_rt = NULL;
  g_autofree uint8_t *table_buf = NULL;
  g_autofree uint8_t *block_buf = NULL;
  g_autofree uint64_t *block_rt_index = NULL;
  uint64_t old_offset = q->rt_offset, old_clusters = q->rt_clusters;
  uint8_t hdr[12];

  for (;;)
    {
      uint64_t end, need, first_rt, last_rt, nb2 = 0, nt2;

      end = tail + nt + nb;
      need = MAX (min_entries, (end + q->rb_entries - 1) / q->rb_entries);
      need = MAX (need, q->rt_size + q->rt_size / 2);
      nt2 = (need * 8 + cs - 1) / cs;
      first_rt = tail / q->rb_entries;
      last_rt = (tail + nt2 + nb - 1) / q->rb_entries;
      for (uint64_t r = first_rt; r <= last_rt; r++)
        if (r >= q->rt_size || q->rt[r] == 0)
          nb2++;
      if (nt2 == nt && nb2 == nb)
        break;
      nt = nt2;
      nb = nb2;
      if (nt * cs > MAX_REFTABLE_BYTES)
        return fail (q, error, VR_DISK_ERROR_NO_SPACE,
                     "qcow2 refcount table would exceed %u MiB", MAX_REFTABLE_BYTES >> 20);
    }
  new_entries = nt * cs / 8;
  new_rt = g_new0 (uint64_t, new_entries);
  memcpy (new_rt, q->rt, q->rt_size * 8);

  /* The new refcount blocks, at [tail + nt, tail + nt + nb). */
  block_buf = vr_disk_alloc_aligned (cs);
  block_rt_index = g_new0 (uint64_t, nb + 1);
  {
    uint64_t k = 0;

    for (uint64_t r = tail / q->rb_entries; k < nb; r++)
      if (r >= q->rt_size || q->rt[r] == 0)
        {
          block_rt_index[k] = r;
          new_rt[r] = (tail + nt + k) << q->cluster_bits;
          k++;
        }
  }
  for (uint64_t k = 0; k < nb; k++)
    {
      uint64_t r = block_rt_index[k];

      memset (block_buf, 0, cs);
      for (uint64_t c = tail; c < tail + nt + nb; c++)
        if (c / q->rb_entries == r)
          {
            uint64_t o, l;

            rb_set (q, block_buf, c % q->rb_entries, 1, &o, &l);
          }
      if (!pwrite_all (q, block_buf, cs, (tail + nt + k) << q->cluster_bits, error))
        {
          free (g_steal_pointer (&block_buf));
          return false;
        }
    }
  /* Existing blocks covering part of the new area. */
  for (uint64_t c = tail; c < tail + nt + nb; c++)
    {
      uint64_t r = c / q->rb_entries;

      if (r < q->rt_size && q->rt[r] != 0)
        {
          uint64_t boff;

          if (!rt_block_offset (q, r, &boff, error)
              || !set_refcount_in_block (q, boff, c, 1, error))
            {
              free (g_steal_pointer (&block_buf));
              return false;
            }
        }
    }
  free (g_steal_pointer (&block_buf));

  table_buf = g_malloc0 (nt * cs);
  for (uint64_t i = 0; i < new_entries; i++)
    put_be64 (table_buf + 8 * i, new_rt[i]);
  if (!pwrite_all (q, table_buf, nt * cs, tail << q->cluster_bits, error)
      || !vr_disk_fdatasync (q->disk, q->disk->fd, error))
    return false;
  put_be64 (hdr, tail << q->cluster_bits);
  put_be32 (hdr + 8, (uint32_t) nt);
  if (!pwrite_all (q, hdr, 12, 48, error) || !vr_disk_fdatasync (q->disk, q->disk->fd, error))
    return false;

  g_free (q->rt);
  q->rt = g_steal_pointer (&new_rt);
  q->rt_size = new_entries;
  q->rt_offset = tail << q->cluster_bits;
  q->rt_clusters = (uint32_t) nt;

  /* Free the old table. */
  for (uint64_t i = 0; i < old_clusters; i++)
    {
      uint64_t c = (old_offset >> q->cluster_bits) + i, boff;

      if (!rt_block_offset (q, c / q->rb_entries, &boff, error))
        return false;
      if (boff != 0 && !set_refcount_in_block (q, boff, c, 0, error))
        return false;
      q->free_hint = MIN (q->free_hint, c);
    }
  return true;
}

/* Drops one reference from every cluster of [offset, offset + len). */
static bool
release_clusters (Qcow2     *q,
                  uint64_t   offset,
                  uint64_t   len,
                  GError   **error)
{
  uint64_t first = offset >> q->cluster_bits;
  uint64_t last = (offset + len - 1) >> q->cluster_bits;

  for (uint64_t c = first; c <= last; c++)
    {
      uint64_t boff, rc;

      if (!rt_block_offset (q, c / q->rb_entries, &boff, error)
          || !get_refcount (q, c, &rc, error))
        return false;
      if (boff == 0 || rc == 0)
        {
          q->broken = true;
          return fail (q, error, VR_DISK_ERROR_CORRUPT,
                       "qcow2 refcount of cluster 0x%" G_GINT64_MODIFIER "x would drop below 0",
                       c << q->cluster_bits);
        }
      if (!set_refcount_in_block (q, boff, c, rc - 1, error))
        return false;
      if (rc == 1)
        {
          fallocate (q->disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     (off_t) (c << q->cluster_bits), (off_t) q->cluster_size);
          q->free_hint = MIN (q->free_hint, c);
        }
    }
  return true;
}

static bool
flush_locked (Qcow2   *q,
              GError **error)
{
  if (!l2_writeback_all (q, error))
    return false;
  if (q->any_l1_dirty)
    {
      if (!vr_disk_fdatasync (q->disk, q->disk->fd, error))
        return false;
      for (uint32_t i = 0; i < q->l1_size; i++)
        {
          uint64_t be;

          if (!q->l1_dirty[i])
            continue;
          be = GUINT64_TO_BE (q->l1[i]);
          if (!pwrite_all (q, &be, 8, q->l1_offset + (uint64_t) i * 8, error))
            return false;
          q->l1_dirty[i] = 0;
        }
      q->any_l1_dirty = false;
    }
  if (!vr_disk_fdatasync (q->disk, q->disk->fd, error))
    return false;
  if (q->pending_free->len > 0)
    {
      g_autoptr (GArray) frees = g_steal_pointer (&q->pending_free);

      q->pending_free = g_array_new (FALSE, FALSE, sizeof (Extent));
      for (guint i = 0; i < frees->len; i++)
        {
          Extent *e = &g_array_index (frees, Extent, i);

          if (!release_clusters (q, e->offset, e->len, error))
            return false;
        }
    }
  return true;
}

/* Drops a reference to [offset, offset + len) once the tables that no longer point at it are
 * on disk (at the next flush). */
static bool
queue_free_extent (Qcow2     *q,
                   uint64_t   offset,
                   uint64_t   len,
                   GError   **error)
{
  Extent e = { offset, len };

  g_array_append_val (q->pending_free, e);
  if (q->pending_free->len >= MAX_PENDING_FREE)
    return flush_locked (q, error);
  return true;
}

/* L1/L2 */

static bool
get_l2_entry (Qcow2     *q,
              uint64_t   guest,
              uint64_t  *entry,
              GError   **error)
{
  uint64_t l1i = guest >> (q->cluster_bits + q->l2_bits);
  uint64_t l2i = (guest >> q->cluster_bits) & (q->l2_entries - 1);
  uint64_t l2off;
  uint8_t *table;

  *entry = 0;
  if (l1i >= q->l1_size)
    return true;
  l2off = q->l1[l1i] & L1E_OFFSET_MASK;
  if (l2off == 0)
    return true;
  table = cache_get (q, &q->l2_cache, l2off, false, "L2 table", error);
  if (table == NULL)
    return false;
  *entry = be64_at (table + 8 * l2i);
  return true;
}

/* Returns the L2 table for guest, allocating it when missing. */
static bool
get_l2_table_for_write (Qcow2     *q,
                        uint64_t   guest,
                        uint8_t  **table,
                        uint64_t  *l2off_out,
                        GError   **error)
{
  uint64_t l1i = guest >> (q->cluster_bits + q->l2_bits);
  uint64_t l2off;

  if (l1i >= q->l1_size)
    return fail (q, error, VR_DISK_ERROR_OUT_OF_RANGE,
                 "qcow2 write at 0x%" G_GINT64_MODIFIER "x lies past the L1 table", guest);
  l2off = q->l1[l1i] & L1E_OFFSET_MASK;
  if (l2off != 0 && !(q->l1[l1i] & OFLAG_COPIED))
    {
      uint64_t rc, copy;
      g_autofree uint8_t *old = NULL;
      uint8_t *t;

      if (!get_refcount (q, l2off >> q->cluster_bits, &rc, error))
        return false;
      if (rc == 0)
        {
          q->broken = true;
          return fail (q, error, VR_DISK_ERROR_CORRUPT,
                       "qcow2 L2 table at 0x%" G_GINT64_MODIFIER "x has refcount 0; run "
                       "“vireo-img check -r all”", l2off);
        }
      if (rc == 1)
        {
          q->l1[l1i] |= OFLAG_COPIED;
          q->l1_dirty[l1i] = 1;
          q->any_l1_dirty = true;
        }
      else
        {
          /* Shared with a snapshot: copy on write. Every cluster the copy points at is now
           * shared too (by the old table and the copy), so its entries lose COPIED; the
           * refcounts of those clusters do not change (one table replaces another). */
          t = cache_get (q, &q->l2_cache, l2off, false, "L2 table", error);
          if (t == NULL)
            return false;
          old = g_memdup2 (t, q->cluster_size);
          for (uint64_t j = 0; j < q->l2_entries; j++)
            put_be64 (old + 8 * j, be64_at (old + 8 * j) & ~OFLAG_COPIED);
          if (!alloc_cluster (q, &copy, error))
            return false;
          t = cache_get (q, &q->l2_cache, copy, true, NULL, error);
          if (t == NULL)
            return false;
          memcpy (t, old, q->cluster_size);
          q->l1[l1i] = copy | OFLAG_COPIED;
          q->l1_dirty[l1i] = 1;
          q->any_l1_dirty = true;
          /* The old table loses its reference only after the L1 entry is on disk. */
          if (!queue_free_extent (q, l2off, q->cluster_size, error))
            return false;
          l2off = copy;
        }
    }
  if (l2off == 0)
    {
      if (!alloc_cluster (q, &l2off, error))
        return false;
      *table = cache_get (q, &q->l2_cache, l2off, true, NULL, error);
      if (*table == NULL)
        return false;
      q->l1[l1i] = l2off | OFLAG_COPIED;
      q->l1_dirty[l1i] = 1;
      q->any_l1_dirty = true;
    }
  else
    {
      *table = cache_get (q, &q->l2_cache, l2off, false, "L2 table", error);
      if (*table == NULL)
        return false;
    }
  *l2off_out = l2off;
  return true;
}

static bool
set_l2_entry (Qcow2     *q,
              uint64_t   guest,
              uint64_t   entry,
              GError   **error)
{
  uint64_t l2i = (guest >> q->cluster_bits) & (q->l2_entries - 1), l2off = 0;
  uint8_t *table = NULL;

  if (!get_l2_table_for_write (q, guest, &table, &l2off, error))
    return false;
  put_be64 (table + 8 * l2i, entry);
  cache_mark_dirty (&q->l2_cache, l2off);
  return true;
}

typedef enum
{
  C_UNALLOCATED,
  C_ZERO,
  C_COMPRESSED,
  C_NORMAL,
} ClusterType;

static bool
classify (Qcow2        *q,
          uint64_t      entry,
          ClusterType  *type,
          uint64_t     *host,
          GError      **error)
{
  *host = 0;
  if (entry & OFLAG_COMPRESSED)
    {
      *type = C_COMPRESSED;
      *host = entry & q->coffset_mask;
      return true;
    }
  *host = entry & L2E_OFFSET_MASK;
  if (entry & OFLAG_ZERO)
    {
      if (q->version < 3)
        return fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 v2 image has a zero cluster entry");
      *type = C_ZERO;
    }
  else
    *type = *host != 0 ? C_NORMAL : C_UNALLOCATED;
  if (*host != 0)
    {
      if ((*host & (q->cluster_size - 1)) != 0)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 cluster offset 0x%" G_GINT64_MODIFIER "x is not cluster aligned",
                     *host);
      if (*host >= q->file_end)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 data cluster at 0x%" G_GINT64_MODIFIER "x lies past the end of "
                     "the file", *host);
    }
  return true;
}

static bool
decompress_cluster (Qcow2     *q,
                    uint64_t   entry,
                    GError   **error)
{
  uint64_t coff = entry & q->coffset_mask;
  uint64_t nsec = ((entry >> q->csize_shift) & q->csize_mask) + 1;
  uint64_t csize = nsec * 512 - (coff & 511);
  size_t done = 0;
  z_stream s = { 0 };
  int ret;
  g_autoptr (GError) local_error = NULL;

  if (q->cbuf_key == coff)
    return true;
  if (coff >= q->file_end)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 compressed cluster at 0x%" G_GINT64_MODIFIER "x lies past the end of "
                 "the file", coff);
  csize = MIN (csize, q->file_end - coff);
  if (!vr_disk_full_pread (q->disk->fd, q->zbuf, (size_t) csize, coff, &done, &local_error))
    return fail (q, error, VR_DISK_ERROR_IO, "%s", local_error->message);
  q->cbuf_key = UINT64_MAX;
  if (inflateInit2 (&s, -15) != Z_OK)
    return fail (q, error, VR_DISK_ERROR_FAILED, "zlib initialisation failed");
  s.next_in = q->zbuf;
  s.avail_in = (uInt) done;
  s.next_out = q->cbuf;
  s.avail_out = (uInt) q->cluster_size;
  ret = inflate (&s, Z_FINISH);
  inflateEnd (&s);
  if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR && ret != Z_OK) || s.avail_out != 0)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 compressed cluster at 0x%" G_GINT64_MODIFIER "x is damaged", coff);
  q->cbuf_key = coff;
  return true;
}

static bool
backing_read (Qcow2               *q,
              const struct iovec  *iov,
              int                  iovcnt,
              uint64_t             skip,
              uint64_t             len,
              uint64_t             guest,
              GError             **error)
{
  uint64_t bsize = q->backing ? vr_disk_get_size (q->backing) : 0;
  uint64_t n = guest < bsize ? MIN (len, bsize - guest) : 0;

  if (n > 0)
    {
      g_autofree struct iovec *part = g_new (struct iovec, MAX (iovcnt, 1));
      int cnt = vr_disk_iov_slice (iov, iovcnt, skip, n, part, iovcnt);

      if (!vr_disk_preadv (q->backing, part, cnt, guest, error))
        return false;
    }
  if (n < len)
    vr_disk_iov_memset (iov, iovcnt, skip + n, 0, len - n);
  return true;
}

/* Reads [guest, guest + len) within one cluster. */
static bool
read_chunk (Qcow2               *q,
            const struct iovec  *iov,
            int                  iovcnt,
            uint64_t             skip,
            uint64_t             len,
            uint64_t             guest,
            GError             **error)
{
  uint64_t entry, host, in = guest & (q->cluster_size - 1);
  ClusterType type;

  if (!get_l2_entry (q, guest, &entry, error) || !classify (q, entry, &type, &host, error))
    return false;
  switch (type)
    {
    case C_UNALLOCATED:
      if (q->backing != NULL)
        return backing_read (q, iov, iovcnt, skip, len, guest, error);
      vr_disk_iov_memset (iov, iovcnt, skip, 0, len);
      return true;
    case C_ZERO:
      vr_disk_iov_memset (iov, iovcnt, skip, 0, len);
      return true;
    case C_COMPRESSED:
      if (!decompress_cluster (q, entry, error))
        return false;
      vr_disk_iov_from_buf (iov, iovcnt, skip, q->cbuf + in, len);
      return true;
    case C_NORMAL:
    default:
      {
        g_autoptr (GError) local_error = NULL;

        if (!vr_disk_file_preadv (q->disk->fd, iov, iovcnt, skip, len, host + in,
                                  &local_error))
          return fail (q, error, local_error->code, "%s", local_error->message);
        return true;
      }
    }
}

static bool
qcow2_preadv (VrDisk              *disk,
              const struct iovec  *iov,
              int                  iovcnt,
              uint64_t             offset,
              uint64_t             len,
              GError             **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  uint64_t skip = 0;

  while (len > 0)
    {
      uint64_t n = MIN (len, q->cluster_size - (offset & (q->cluster_size - 1)));

      if (!read_chunk (q, iov, iovcnt, skip, n, offset, error))
        return false;
      skip += n;
      offset += n;
      len -= n;
    }
  return true;
}

static bool
queue_free (Qcow2     *q,
            uint64_t   entry,
            ClusterType type,
            uint64_t   host,
            GError   **error)
{
  if (host == 0)
    return true;
  if (type == C_COMPRESSED)
    {
      uint64_t nsec = ((entry >> q->csize_shift) & q->csize_mask) + 1;

      return queue_free_extent (q, host & ~UINT64_C (511), nsec * 512, error);
    }
  return queue_free_extent (q, host, q->cluster_size, error);
}

/* Writes buf (NULL: zeroes) to [guest, guest + len) within one cluster. */
static bool
write_chunk (Qcow2               *q,
             const struct iovec  *iov,
             int                  iovcnt,
             uint64_t             skip,
             uint64_t             len,
             uint64_t             guest,
             GError             **error)
{
  uint64_t entry, host, in = guest & (q->cluster_size - 1), cstart = guest - in, newoff;
  ClusterType type;
  g_autofree uint8_t *buf = NULL;
  bool shared = false;

  if (!get_l2_entry (q, guest, &entry, error) || !classify (q, entry, &type, &host, error))
    return false;

  if (type == C_NORMAL && !(entry & OFLAG_COPIED))
    {
      uint64_t rc;

      if (!get_refcount (q, host >> q->cluster_bits, &rc, error))
        return false;
      if (rc == 0)
        {
          q->broken = true;
          return fail (q, error, VR_DISK_ERROR_CORRUPT,
                       "qcow2 data cluster at 0x%" G_GINT64_MODIFIER "x has refcount 0; run "
                       "“vireo-img check -r all”", host);
        }
      if (rc == 1)
        {
          entry |= OFLAG_COPIED;
          if (!set_l2_entry (q, guest, entry, error))
            return false;
        }
      else
        shared = true;  /* a snapshot uses it: copy on write below */
    }
  if (type == C_NORMAL && !shared)
    {
      g_autoptr (GError) local_error = NULL;

      if (!vr_disk_file_pwritev (q->disk->fd, iov, iovcnt, skip, len, host + in, &local_error))
        return fail (q, error, local_error->code, "%s", local_error->message);
      return true;
    }

  /* Build the whole new cluster. */
  buf = vr_disk_alloc_aligned (q->cluster_size);
  if (len < q->cluster_size)
    {
      struct iovec whole = { buf, q->cluster_size };

      if (type == C_ZERO)
        memset (buf, 0, q->cluster_size);
      else if (!read_chunk (q, &whole, 1, 0, q->cluster_size, cstart, error))
        {
          free (g_steal_pointer (&buf));
          return false;
        }
    }
  vr_disk_iov_to_buf (iov, iovcnt, skip, buf + in, len);

  if (type == C_ZERO && host != 0 && (entry & OFLAG_COPIED))
    newoff = host;  /* preallocated zero cluster: reuse it */
  else if (!alloc_cluster (q, &newoff, error))
    {
      free (g_steal_pointer (&buf));
      return false;
    }
  if (!pwrite_all (q, buf, q->cluster_size, newoff, error))
    {
      free (g_steal_pointer (&buf));
      return false;
    }
  free (g_steal_pointer (&buf));
  if (!set_l2_entry (q, guest, newoff | OFLAG_COPIED, error))
    return false;
  /* The old cluster loses its reference once the L2 entry is on disk (queued after the entry
   * changed: a flush triggered here must not release a cluster still in the table). */
  if (newoff != host)
    return queue_free (q, entry, type, host, error);
  return true;
}

static bool
check_writable (Qcow2   *q,
                GError **error)
{
  if (q->broken)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 image has inconsistent metadata; writes are refused (run “vireo-img "
                 "check -r all”)");
  return true;
}

static bool
qcow2_pwritev (VrDisk              *disk,
               const struct iovec  *iov,
               int                  iovcnt,
               uint64_t             offset,
               uint64_t             len,
               GError             **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  uint64_t skip = 0;

  if (!check_writable (q, error))
    return false;
  while (len > 0)
    {
      uint64_t n = MIN (len, q->cluster_size - (offset & (q->cluster_size - 1)));

      if (!write_chunk (q, iov, iovcnt, skip, n, offset, error))
        return false;
      skip += n;
      offset += n;
      len -= n;
    }
  return true;
}

static bool
qcow2_flush (VrDisk  *disk,
             GError **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);

  return flush_locked (q, error);
}

/* Zeroes or discards whole clusters; partial ones are written with zeroes (zeroes=true) or
 * left alone. */
static bool
zero_or_discard (VrDisk    *disk,
                 uint64_t   offset,
                 uint64_t   len,
                 bool       zeroes,
                 bool       may_unmap,
                 GError   **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  g_autofree uint8_t *zero_buf = NULL;

  if (!check_writable (q, error))
    return false;
  while (len > 0)
    {
      uint64_t in = offset & (q->cluster_size - 1);
      uint64_t n = MIN (len, q->cluster_size - in);
      /* The last cluster of a disk whose size is not cluster aligned counts as whole. */
      bool whole = in == 0 && (n == q->cluster_size || offset + n == disk->size);

      if (whole)
        {
          uint64_t entry, host, new_entry;
          ClusterType type;

          if (!get_l2_entry (q, offset, &entry, error)
              || !classify (q, entry, &type, &host, error))
            return false;
          if (zeroes && q->version < 3 && q->backing != NULL)
            whole = false;  /* v2 has no zero clusters: write zeroes below */
          else if (type == C_UNALLOCATED && (q->backing == NULL || !zeroes))
            ;  /* reads as zeroes already (or discard: nothing to drop) */
          else if (zeroes && type == C_ZERO && (host == 0 || !may_unmap))
            ;  /* already zero */
          else if (zeroes && !may_unmap && q->version >= 3 && type == C_NORMAL
                   && (entry & OFLAG_COPIED))
            {
              if (!set_l2_entry (q, offset, entry | OFLAG_ZERO, error))
                return false;
            }
          else
            {
              new_entry = q->version >= 3 && (zeroes || q->backing != NULL) ? OFLAG_ZERO : 0;
              if (!(type == C_ZERO && host == 0 && new_entry == OFLAG_ZERO))
                {
                  if (!set_l2_entry (q, offset, new_entry, error)
                      || !queue_free (q, entry, type, host, error))
                    return false;
                }
            }
        }
      if (!whole && zeroes)
        {
          struct iovec iov;

          if (zero_buf == NULL)
            zero_buf = g_malloc0 (q->cluster_size);
          iov.iov_base = zero_buf;
          iov.iov_len = n;
          if (!write_chunk (q, &iov, 1, 0, n, offset, error))
            return false;
        }
      offset += n;
      len -= n;
    }
  return true;
}

static bool
qcow2_discard (VrDisk    *disk,
               uint64_t   offset,
               uint64_t   len,
               GError   **error)
{
  return zero_or_discard (disk, offset, len, false, true, error);
}

static bool
qcow2_write_zeroes (VrDisk    *disk,
                    uint64_t   offset,
                    uint64_t   len,
                    bool       may_unmap,
                    GError   **error)
{
  return zero_or_discard (disk, offset, len, true, may_unmap, error);
}

static bool
qcow2_block_status (VrDisk    *disk,
                    uint64_t   offset,
                    uint64_t   len,
                    bool      *is_zero,
                    uint64_t  *pnum,
                    GError   **error)
{
  Qcow2 *q = disk->priv;
  uint64_t in = offset & (q->cluster_size - 1);
  uint64_t n = MIN (len, q->cluster_size - in), entry, host;
  ClusterType type;

  {
    g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);

    if (!get_l2_entry (q, offset, &entry, error) || !classify (q, entry, &type, &host, error))
      return false;
  }
  *pnum = n;
  if (type == C_UNALLOCATED && q->backing != NULL)
    {
      uint64_t bsize = vr_disk_get_size (q->backing);

      if (offset >= bsize)
        *is_zero = true;
      else
        return vr_disk_block_status (q->backing, offset, MIN (n, bsize - offset), is_zero,
                                     pnum, error);
    }
  else
    *is_zero = type == C_UNALLOCATED || type == C_ZERO;
  return true;
}

/* Internal snapshots: the table */

static void
snap_clear (Snap *sn)
{
  g_free (sn->id);
  g_free (sn->name);
  g_free (sn->unknown_extra);
  memset (sn, 0, sizeof *sn);
}

static void
snaps_free (Snap     *snaps,
            uint32_t  n)
{
  for (uint32_t i = 0; i < n && snaps != NULL; i++)
    snap_clear (&snaps[i]);
  g_free (snaps);
}

static uint64_t
l1_entries_for (Qcow2    *q,
                uint64_t  size)
{
  return (size + (q->cluster_size << q->l2_bits) - 1) >> (q->cluster_bits + q->l2_bits);
}

/* Checks an L1 table's place: size limit, alignment, inside the file. */
static bool
check_l1_place (Qcow2       *q,
                uint64_t     offset,
                uint64_t     entries,
                const char  *what,
                GError     **error)
{
  if (entries * 8 > MAX_L1_BYTES)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "%s has %" G_GUINT64_FORMAT " entries (limit %u MiB)", what, entries,
                 MAX_L1_BYTES >> 20);
  if ((offset & (q->cluster_size - 1)) != 0)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "%s offset 0x%" G_GINT64_MODIFIER "x is not cluster aligned", what, offset);
  if (entries > 0 && (offset == 0 || !in_file (q, offset, entries * 8)))
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "%s at 0x%" G_GINT64_MODIFIER "x lies outside the file", what, offset);
  return true;
}

/* Reads and checks the snapshot table (every value in it is hostile until checked). */
static bool
read_snapshots (Qcow2   *q,
                GError **error)
{
  uint64_t off, end;
  Snap *snaps;

  if (q->nb_snapshots == 0)
    return true;
  if (q->nb_snapshots > MAX_SNAPSHOTS)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 snapshot table has %u entries (limit %u)", q->nb_snapshots,
                 MAX_SNAPSHOTS);
  if (q->snapshots_offset == 0 || (q->snapshots_offset & (q->cluster_size - 1)) != 0
      || !in_file (q, q->snapshots_offset, 40))
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 snapshot table offset 0x%" G_GINT64_MODIFIER "x is invalid",
                 q->snapshots_offset);

  snaps = g_new0 (Snap, q->nb_snapshots);
  off = q->snapshots_offset;
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    {
      Snap *sn = &snaps[i];
      uint8_t h[40];
      uint32_t extra, id_len, name_len;
      g_autofree uint8_t *rest = NULL;
      g_autofree char *what = NULL;

      off = (off + 7) & ~UINT64_C (7);
      if (off - q->snapshots_offset + 40 > MAX_SNAPSHOT_TABLE_BYTES)
        goto too_big;
      if (!pread_exact (q, h, sizeof h, off, error))
        goto fail;
      sn->l1_offset = be64_at (h);
      sn->l1_size = be32_at (h + 8);
      id_len = ((uint32_t) h[12] << 8) | h[13];
      name_len = ((uint32_t) h[14] << 8) | h[15];
      sn->date_sec = be32_at (h + 16);
      sn->date_nsec = be32_at (h + 20);
      sn->vm_clock_nsec = be64_at (h + 24);
      sn->vm_state_size = be32_at (h + 32);
      extra = be32_at (h + 36);
      if (extra > MAX_SNAPSHOT_EXTRA)
        {
          fail (q, error, VR_DISK_ERROR_CORRUPT,
                "qcow2 snapshot table entry %u has too much extra data (%u bytes, limit %u)",
                i, extra, MAX_SNAPSHOT_EXTRA);
          goto fail;
        }
      off += 40;
      if (off - q->snapshots_offset + extra + id_len + name_len > MAX_SNAPSHOT_TABLE_BYTES)
        goto too_big;
      rest = g_malloc0 ((size_t) extra + id_len + name_len + 1);
      if (!pread_exact (q, rest, (size_t) extra + id_len + name_len, off, error))
        goto fail;
      off += (uint64_t) extra + id_len + name_len;
      /* The extra data grew over time; short entries (QEMU before 1.1, v2) get defaults. */
      if (extra >= 8)
        sn->vm_state_size = be64_at (rest);
      sn->disk_size = extra >= 16 ? be64_at (rest + 8) : q->disk->size;
      sn->icount = extra >= 24 ? be64_at (rest + 16) : UINT64_MAX;
      if (extra > SNAPSHOT_EXTRA_KNOWN)
        {
          sn->unknown_extra_len = extra - SNAPSHOT_EXTRA_KNOWN;
          sn->unknown_extra = g_memdup2 (rest + SNAPSHOT_EXTRA_KNOWN, sn->unknown_extra_len);
        }
      /* Like QEMU, a NUL ends the string. */
      sn->id = g_strndup ((const char *) rest + extra, id_len);
      sn->name = g_strndup ((const char *) rest + extra + id_len, name_len);
      if (sn->disk_size > (UINT64_C (1) << 62))
        {
          fail (q, error, VR_DISK_ERROR_CORRUPT,
                "qcow2 snapshot “%s” has an invalid disk size %" G_GUINT64_FORMAT, sn->id,
                sn->disk_size);
          goto fail;
        }
      what = g_strdup_printf ("qcow2 L1 table of snapshot “%s”", sn->id);
      if (!check_l1_place (q, sn->l1_offset, sn->l1_size, what, error))
        goto fail;
    }
  end = off;
  q->snaps = snaps;
  q->snapshots_size = end - q->snapshots_offset;
  return true;

too_big:
  fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 snapshot table is larger than %u MiB",
        MAX_SNAPSHOT_TABLE_BYTES >> 20);
fail:
  snaps_free (snaps, q->nb_snapshots);
  return false;
}

/* Serializes a snapshot table as QEMU writes it (24 bytes of known extra data). */
static uint8_t *
build_snapshot_table (const Snap *snaps,
                      uint32_t    n,
                      uint64_t    cluster_size,
                      uint64_t   *len_out)
{
  uint64_t len = 0, off = 0;
  uint8_t *buf;

  for (uint32_t i = 0; i < n; i++)
    len = ((len + 7) & ~UINT64_C (7)) + 40 + SNAPSHOT_EXTRA_KNOWN + snaps[i].unknown_extra_len
          + strlen (snaps[i].id) + strlen (snaps[i].name);
  buf = g_malloc0 (MAX ((len + cluster_size - 1) & ~(cluster_size - 1), 1));
  for (uint32_t i = 0; i < n; i++)
    {
      const Snap *sn = &snaps[i];
      size_t id_len = strlen (sn->id), name_len = strlen (sn->name);
      uint8_t *h;

      off = (off + 7) & ~UINT64_C (7);
      h = buf + off;
      put_be64 (h, sn->l1_offset);
      put_be32 (h + 8, sn->l1_size);
      put_be16 (h + 12, (uint16_t) id_len);
      put_be16 (h + 14, (uint16_t) name_len);
      put_be32 (h + 16, sn->date_sec);
      put_be32 (h + 20, sn->date_nsec);
      put_be64 (h + 24, sn->vm_clock_nsec);
      /* A state too large for 32 bits reads as "no state" to old readers, as in QEMU. */
      put_be32 (h + 32, sn->vm_state_size <= UINT32_MAX ? (uint32_t) sn->vm_state_size : 0);
      put_be32 (h + 36, SNAPSHOT_EXTRA_KNOWN + sn->unknown_extra_len);
      put_be64 (h + 40, sn->vm_state_size);
      put_be64 (h + 48, sn->disk_size);
      put_be64 (h + 56, sn->icount);
      off += 40 + SNAPSHOT_EXTRA_KNOWN;
      if (sn->unknown_extra_len > 0)
        memcpy (buf + off, sn->unknown_extra, sn->unknown_extra_len);
      off += sn->unknown_extra_len;
      memcpy (buf + off, sn->id, id_len);
      off += id_len;
      memcpy (buf + off, sn->name, name_len);
      off += name_len;
    }
  g_assert (off == len);
  *len_out = len;
  return buf;
}

/* Index of the snapshot with this id, else with this name (QEMU's order), or -1. */
static int
find_snapshot (Qcow2       *q,
               const char  *id_or_name)
{
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    if (strcmp (q->snaps[i].id, id_or_name) == 0)
      return (int) i;
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    if (strcmp (q->snaps[i].name, id_or_name) == 0)
      return (int) i;
  return -1;
}

static bool
snapshots_readable (Qcow2   *q,
                    GError **error)
{
  if (q->snapshots_error != NULL)
    return fail (q, error, VR_DISK_ERROR_CORRUPT, "%s", q->snapshots_error);
  g_assert (q->nb_snapshots == 0 || q->snaps != NULL);
  return true;
}

static GPtrArray *
qcow2_snapshot_list (VrDisk  *disk,
                     GError **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  GPtrArray *list;

  if (!snapshots_readable (q, error))
    return NULL;
  list = g_ptr_array_new_full (q->nb_snapshots, (GDestroyNotify) vr_disk_snapshot_free);
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    {
      const Snap *sn = &q->snaps[i];
      VrDiskSnapshot *v = g_new0 (VrDiskSnapshot, 1);

      v->id = g_strdup (sn->id);
      v->name = g_strdup (sn->name);
      v->vm_state_size = sn->vm_state_size;
      v->date_sec = sn->date_sec;
      v->date_nsec = sn->date_nsec;
      v->vm_clock_nsec = sn->vm_clock_nsec;
      v->disk_size = sn->disk_size;
      v->icount = sn->icount;
      g_ptr_array_add (list, v);
    }
  return list;
}

/*
 * Transactions: snapshot operations and L1 growth change many tables at once. Nothing that
 * the current header reaches is written in place: new L1/L2 tables, a new snapshot table,
 * shadow copies of every refcount block that changes and a new refcount table go to clusters
 * that are free both now and in the new state; then one header write switches everything.
 * A crash before it leaves the old image (and harmless garbage in free clusters), after it
 * the new one; the refcounts of each are exact, so `qemu-img check` is clean in both. (QEMU
 * changes refcounts and COPIED flags in place, in separate writes; check reports the window
 * between them as corruption.)
 */

typedef struct
{
  uint8_t  *data;     /* the block's new contents */
  uint64_t  new_off;  /* where it goes; 0 until placed */
} ShadowBlock;

typedef struct
{
  Qcow2      *q;
  GHashTable *blocks;        /* refcount table index → ShadowBlock */
  uint64_t    hint;          /* cluster index where the next free cluster search starts */
  GArray     *dropped;       /* uint64_t clusters whose refcount fell to 0 */
  uint64_t    old_file_end;
  uint64_t    rt_offset;     /* the new refcount table, once placed */
  uint64_t    rt_clusters;
  uint64_t   *rt;            /* its entries (host order), once built */
  uint64_t    rt_entries;
  bool        committed;
} Txn;

typedef struct
{
  uint64_t size;
  uint32_t l1_size;
  uint64_t l1_offset;
  uint32_t nb_snapshots;
  uint64_t snapshots_offset;
} TxnHeader;

static void
shadow_block_free (gpointer p)
{
  ShadowBlock *b = p;

  free (b->data);
  g_free (b);
}

static void
txn_init (Txn   *t,
          Qcow2 *q)
{
  memset (t, 0, sizeof *t);
  t->q = q;
  t->blocks = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, shadow_block_free);
  t->dropped = g_array_new (FALSE, FALSE, sizeof (uint64_t));
  t->hint = q->free_hint;
  t->old_file_end = q->file_end;
}

/* Forgets an uncommitted transaction: only free clusters were written. */
static void
txn_abort (Txn *t)
{
  Qcow2 *q = t->q;

  if (!t->committed && q->file_end > t->old_file_end)
    {
      /* Clusters past the old end were allocated by this transaction only. */
      if (ftruncate (q->disk->fd, (off_t) t->old_file_end) == 0)
        q->file_end = t->old_file_end;
    }
  g_clear_pointer (&t->blocks, g_hash_table_unref);
  g_clear_pointer (&t->dropped, g_array_unref);
  g_clear_pointer (&t->rt, g_free);
}

static bool
txn_block (Txn          *t,
           uint64_t      r,
           ShadowBlock **out,
           GError      **error)
{
  Qcow2 *q = t->q;
  ShadowBlock *b = g_hash_table_lookup (t->blocks, GSIZE_TO_POINTER (r));
  uint64_t boff;

  if (b == NULL)
    {
      if (r >= MAX_REFTABLE_BYTES / 8)
        return fail (q, error, VR_DISK_ERROR_NO_SPACE,
                     "qcow2 refcount table would exceed %u MiB", MAX_REFTABLE_BYTES >> 20);
      if (!rt_block_offset (q, r, &boff, error))
        return false;
      b = g_new0 (ShadowBlock, 1);
      b->data = vr_disk_alloc_aligned (q->cluster_size);
      if (boff == 0)
        memset (b->data, 0, q->cluster_size);
      else
        {
          uint8_t *old = cache_get (q, &q->rb_cache, boff, false, "refcount block", error);

          if (old == NULL)
            {
              shadow_block_free (b);
              return false;
            }
          memcpy (b->data, old, q->cluster_size);
        }
      g_hash_table_insert (t->blocks, GSIZE_TO_POINTER (r), b);
    }
  *out = b;
  return true;
}

/* The refcount of a cluster in the new state. */
static bool
txn_get (Txn       *t,
         uint64_t   c,
         uint64_t  *rc,
         GError   **error)
{
  Qcow2 *q = t->q;
  ShadowBlock *b = g_hash_table_lookup (t->blocks, GSIZE_TO_POINTER (c / q->rb_entries));

  if (b != NULL)
    {
      *rc = rb_get (q, b->data, c % q->rb_entries);
      return true;
    }
  return get_refcount (q, c, rc, error);
}

static bool
txn_add (Txn       *t,
         uint64_t   c,
         int        delta,
         GError   **error)
{
  Qcow2 *q = t->q;
  ShadowBlock *b = NULL;
  uint64_t rc, o, l;

  if (!txn_get (t, c, &rc, error))
    return false;
  if (delta > 0 && rc >= q->refcount_max)
    return fail (q, error, VR_DISK_ERROR_NO_SPACE,
                 "qcow2 refcount of cluster 0x%" G_GINT64_MODIFIER "x would overflow (%u-bit "
                 "refcounts): too many snapshots share it", c << q->cluster_bits,
                 1u << q->refcount_order);
  if (delta < 0 && rc == 0)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 refcount of cluster 0x%" G_GINT64_MODIFIER "x would drop below 0; the "
                 "refcounts are inconsistent (run “vireo-img check”)", c << q->cluster_bits);
  if (!txn_block (t, c / q->rb_entries, &b, error))
    return false;
  rb_set (q, b->data, c % q->rb_entries, delta > 0 ? rc + 1 : rc - 1, &o, &l);
  if (delta < 0 && rc == 1)
    g_array_append_val (t->dropped, c);
  return true;
}

static bool
txn_add_range (Txn       *t,
               uint64_t   offset,
               uint64_t   len,
               int        delta,
               GError   **error)
{
  uint32_t bits = t->q->cluster_bits;

  if (len == 0)
    return true;
  for (uint64_t c = offset >> bits; c <= (offset + len - 1) >> bits; c++)
    if (!txn_add (t, c, delta, error))
      return false;
  return true;
}

/* n contiguous clusters free now and in the new state; they get refcount 1 in the latter. */
static bool
txn_alloc (Txn       *t,
           uint64_t   n,
           uint64_t  *offset,
           GError   **error)
{
  Qcow2 *q = t->q;
  uint64_t limit = UINT64_C (1) << (56 - q->cluster_bits), start = t->hint, len = 0;

  g_assert (n > 0);
  for (uint64_t c = start; len < n; c++)
    {
      uint64_t old_rc, rc;

      if (c >= limit)
        return fail (q, error, VR_DISK_ERROR_NO_SPACE, "qcow2 image is full (offset limit)");
      if (!get_refcount (q, c, &old_rc, error) || !txn_get (t, c, &rc, error))
        return false;
      if (old_rc != 0 || rc != 0)
        {
          len = 0;
          start = c + 1;
          continue;
        }
      if (is_metadata_cluster (q, c))
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 refcounts are inconsistent: metadata cluster 0x%" G_GINT64_MODIFIER
                     "x is marked free; run “vireo-img check -r all”", c << q->cluster_bits);
      len++;
    }
  for (uint64_t c = start; c < start + n; c++)
    if (!txn_add (t, c, 1, error))
      return false;
  t->hint = start + n;
  *offset = start << q->cluster_bits;
  if (*offset + n * q->cluster_size > q->file_end)
    q->file_end = *offset + n * q->cluster_size;
  return true;
}

/* Writes buf (len bytes, zero-padded to whole clusters) to new clusters. */
static bool
txn_write_new (Txn            *t,
               const void     *buf,
               uint64_t        len,
               uint64_t       *offset,
               GError        **error)
{
  Qcow2 *q = t->q;
  uint64_t n = (len + q->cluster_size - 1) >> q->cluster_bits;
  g_autofree uint8_t *padded = NULL;

  *offset = 0;
  if (n == 0)
    return true;
  if (!txn_alloc (t, n, offset, error))
    return false;
  padded = g_malloc0 (n << q->cluster_bits);
  memcpy (padded, buf, len);
  return pwrite_all (q, padded, n << q->cluster_bits, *offset, error);
}

/* Writes a host-order L1 table to new clusters. */
static bool
txn_write_l1 (Txn             *t,
              const uint64_t  *l1,
              uint32_t         size,
              uint64_t        *offset,
              GError         **error)
{
  g_autofree uint64_t *be = g_new (uint64_t, MAX (size, 1));

  for (uint32_t i = 0; i < size; i++)
    be[i] = GUINT64_TO_BE (l1[i]);
  return txn_write_new (t, be, (uint64_t) size * 8, offset, error);
}

static bool
read_l1_table (Qcow2       *q,
               uint64_t     offset,
               uint32_t     size,
               uint32_t     alloc_size,
               const char  *what,
               uint64_t   **out,
               GError     **error)
{
  g_autofree uint64_t *l1 = NULL;

  if (!check_l1_place (q, offset, size, what, error))
    return false;
  l1 = g_new0 (uint64_t, MAX (MAX (size, alloc_size), 1));
  if (size > 0 && !pread_exact (q, l1, (size_t) size * 8, offset, error))
    return false;
  for (uint32_t i = 0; i < size; i++)
    l1[i] = GUINT64_FROM_BE (l1[i]);
  *out = g_steal_pointer (&l1);
  return true;
}

/* Reads an L2 table straight from the file (the cache holds only active, clean tables). */
static bool
read_l2_direct (Qcow2     *q,
                uint64_t   offset,
                uint8_t   *buf,
                GError   **error)
{
  if ((offset & (q->cluster_size - 1)) != 0 || !in_file (q, offset, q->cluster_size))
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 L2 table offset 0x%" G_GINT64_MODIFIER "x is invalid", offset);
  return pread_exact (q, buf, q->cluster_size, offset, error);
}

/* Adds delta to the refcount of every cluster an L2 entry points at. */
static bool
txn_l2_entry_refs (Txn       *t,
                   uint64_t   e,
                   int        delta,
                   GError   **error)
{
  Qcow2 *q = t->q;
  uint64_t host;

  if (e & OFLAG_COMPRESSED)
    {
      uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;

      host = e & q->coffset_mask;
      if (host == 0 || host >= q->file_end)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 compressed cluster at 0x%" G_GINT64_MODIFIER "x lies past the end "
                     "of the file", host);
      return txn_add_range (t, host & ~UINT64_C (511), nsec * 512, delta, error);
    }
  host = e & L2E_OFFSET_MASK;
  if (host == 0)
    return true;
  if ((host & (q->cluster_size - 1)) != 0 || host >= q->file_end)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 data cluster offset 0x%" G_GINT64_MODIFIER "x is invalid", host);
  return txn_add (t, host >> q->cluster_bits, delta, error);
}

/* Drops one L1 table's references: every L2 table it points at, and through each of them
 * every data cluster (a data cluster's refcount counts the L1→L2 paths reaching it). */
static bool
txn_drop_l1 (Txn             *t,
             const uint64_t  *l1,
             uint32_t         size,
             uint8_t         *buf,
             GError         **error)
{
  Qcow2 *q = t->q;

  for (uint32_t i = 0; i < size; i++)
    {
      uint64_t l2off = l1[i] & L1E_OFFSET_MASK;

      if (l2off == 0)
        continue;
      if (!read_l2_direct (q, l2off, buf, error))
        return false;
      for (uint64_t j = 0; j < q->l2_entries; j++)
        if (!txn_l2_entry_refs (t, be64_at (buf + 8 * j), -1, error))
          return false;
      if (!txn_add (t, l2off >> q->cluster_bits, -1, error))
        return false;
    }
  return true;
}

/* Gives the active image its own copy of the L2 table at l2off: every cluster it points at
 * gains a reference (so is shared: the copy's entries lose COPIED). */
static bool
txn_copy_l2 (Txn       *t,
             uint64_t   l2off,
             uint8_t   *buf,
             uint64_t  *copy,
             GError   **error)
{
  Qcow2 *q = t->q;

  if (!read_l2_direct (q, l2off, buf, error))
    return false;
  for (uint64_t j = 0; j < q->l2_entries; j++)
    {
      uint64_t e = be64_at (buf + 8 * j);

      if (!txn_l2_entry_refs (t, e, 1, error))
        return false;
      put_be64 (buf + 8 * j, e & ~OFLAG_COPIED);
    }
  return txn_write_new (t, buf, q->cluster_size, copy, error);
}

/* The active L1 table as it must be in the new state: an L2 table whose entries' COPIED flags
 * no longer match the new refcounts is replaced by a corrected copy (never changed in place:
 * the old state still uses it); each L1 entry's COPIED follows its table's refcount. */
static bool
txn_fix_active (Txn       *t,
                uint64_t  *l1,
                uint8_t   *buf,
                bool      *changed,
                GError   **error)
{
  Qcow2 *q = t->q;

  *changed = false;
  for (uint32_t i = 0; i < q->l1_size; i++)
    {
      uint64_t l2off = q->l1[i] & L1E_OFFSET_MASK, rc, copy;
      bool dirty = false;

      l1[i] = q->l1[i];
      if (l2off == 0)
        continue;
      if (!read_l2_direct (q, l2off, buf, error))
        return false;
      for (uint64_t j = 0; j < q->l2_entries; j++)
        {
          uint64_t e = be64_at (buf + 8 * j), host = e & L2E_OFFSET_MASK;

          if ((e & OFLAG_COMPRESSED) || host == 0)
            continue;
          if (!txn_get (t, host >> q->cluster_bits, &rc, error))
            return false;
          if ((rc == 1) != ((e & OFLAG_COPIED) != 0))
            {
              put_be64 (buf + 8 * j, e ^ OFLAG_COPIED);
              dirty = true;
            }
        }
      if (dirty)
        {
          if (!txn_write_new (t, buf, q->cluster_size, &copy, error)
              || !txn_add (t, l2off >> q->cluster_bits, -1, error))
            return false;
          l1[i] = copy | OFLAG_COPIED;
        }
      else
        {
          if (!txn_get (t, l2off >> q->cluster_bits, &rc, error))
            return false;
          l1[i] = rc == 1 ? l1[i] | OFLAG_COPIED : l1[i] & ~OFLAG_COPIED;
        }
      *changed |= l1[i] != q->l1[i];
    }
  return true;
}

/* Every table the new state keeps must still be referenced (a hostile image could make a
 * deletion free clusters another table still uses). */
static bool
txn_check_kept (Txn         *t,
                uint64_t     offset,
                uint64_t     len,
                const char  *what,
                GError     **error)
{
  Qcow2 *q = t->q;

  if (len == 0)
    return true;
  for (uint64_t c = offset >> q->cluster_bits; c <= (offset + len - 1) >> q->cluster_bits; c++)
    {
      uint64_t rc;

      if (!txn_get (t, c, &rc, error))
        return false;
      if (rc == 0)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 %s at 0x%" G_GINT64_MODIFIER "x would be freed while in use; the "
                     "refcounts are inconsistent (run “vireo-img check”)", what,
                     c << q->cluster_bits);
    }
  return true;
}

/* An L1 table the new state keeps, and each L2 table it points at, must stay referenced.
 * l1 NULL: read it from the file. */
static bool
txn_check_kept_l1 (Txn             *t,
                   uint64_t         offset,
                   uint32_t         size,
                   const uint64_t  *l1,
                   GError         **error)
{
  Qcow2 *q = t->q;
  g_autofree uint64_t *read = NULL;

  if (!txn_check_kept (t, offset, (uint64_t) size * 8, "L1 table", error))
    return false;
  if (l1 == NULL)
    {
      if (!read_l1_table (q, offset, size, 0, "qcow2 L1 table", &read, error))
        return false;
      l1 = read;
    }
  for (uint32_t i = 0; i < size; i++)
    if ((l1[i] & L1E_OFFSET_MASK) != 0
        && !txn_check_kept (t, l1[i] & L1E_OFFSET_MASK, q->cluster_size, "L2 table", error))
      return false;
  return true;
}

/*
 * Places the shadow refcount blocks and a new refcount table, writes them, syncs, and
 * switches the header. Returns true once the header is written (t->committed); the caller
 * then updates its in-memory state and calls txn_finish().
 */
static bool
txn_commit (Txn              *t,
            const TxnHeader  *h,
            GError          **error)
{
  Qcow2 *q = t->q;
  uint64_t cs = q->cluster_size;
  g_autofree uint8_t *rt_buf = NULL;
  uint8_t hdr[48];
  GHashTableIter it;
  gpointer key, value;

  /* The old refcount table is garbage in the new state. */
  if (!txn_add_range (t, q->rt_offset, (uint64_t) q->rt_clusters << q->cluster_bits, -1,
                      error))
    return false;

  /* Place every changed block (placing one can change another: repeat until stable) and a
   * refcount table large enough for all of them. */
  for (;;)
    {
      g_autoptr (GArray) todo = g_array_new (FALSE, FALSE, sizeof (uint64_t));
      uint64_t entries = q->rt_size, nt;
      bool changed = false;

      g_hash_table_iter_init (&it, t->blocks);
      while (g_hash_table_iter_next (&it, &key, &value))
        {
          uint64_t r = GPOINTER_TO_SIZE (key);

          if (((ShadowBlock *) value)->new_off == 0)
            g_array_append_val (todo, r);
        }
      for (guint i = 0; i < todo->len; i++)
        {
          uint64_t r = g_array_index (todo, uint64_t, i), off, boff;
          ShadowBlock *b;

          if (!txn_alloc (t, 1, &off, error) || !rt_block_offset (q, r, &boff, error))
            return false;
          b = g_hash_table_lookup (t->blocks, GSIZE_TO_POINTER (r));
          b->new_off = off;
          /* The block it replaces is garbage in the new state. */
          if (boff != 0 && !txn_add (t, boff >> q->cluster_bits, -1, error))
            return false;
          changed = true;
        }
      g_hash_table_iter_init (&it, t->blocks);
      while (g_hash_table_iter_next (&it, &key, &value))
        entries = MAX (entries, GPOINTER_TO_SIZE (key) + 1);
      nt = MAX (q->rt_clusters, (entries * 8 + cs - 1) / cs);
      if (t->rt_offset == 0 || t->rt_clusters < nt)
        {
          if (nt * cs > MAX_REFTABLE_BYTES)
            return fail (q, error, VR_DISK_ERROR_NO_SPACE,
                         "qcow2 refcount table would exceed %u MiB", MAX_REFTABLE_BYTES >> 20);
          if (t->rt_offset != 0
              && !txn_add_range (t, t->rt_offset, t->rt_clusters * cs, -1, error))
            return false;
          if (!txn_alloc (t, nt, &t->rt_offset, error))
            return false;
          t->rt_clusters = nt;
          changed = true;
        }
      if (!changed)
        break;
    }

  t->rt_entries = t->rt_clusters * cs / 8;
  t->rt = g_new0 (uint64_t, t->rt_entries);
  memcpy (t->rt, q->rt, q->rt_size * 8);
  g_hash_table_iter_init (&it, t->blocks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      ShadowBlock *b = value;

      t->rt[GPOINTER_TO_SIZE (key)] = b->new_off;
      if (!pwrite_all (q, b->data, cs, b->new_off, error))
        return false;
    }
  rt_buf = g_malloc (t->rt_clusters * cs);
  for (uint64_t i = 0; i < t->rt_entries; i++)
    put_be64 (rt_buf + 8 * i, t->rt[i]);
  if (!pwrite_all (q, rt_buf, t->rt_clusters * cs, t->rt_offset, error)
      || !vr_disk_fdatasync (q->disk, q->disk->fd, error))
    return false;

  /* The switch: bytes 24..71 of the header, one write inside the first sector. */
  put_be64 (hdr, h->size);
  put_be32 (hdr + 8, q->crypt_method);
  put_be32 (hdr + 12, h->l1_size);
  put_be64 (hdr + 16, h->l1_offset);
  put_be64 (hdr + 24, t->rt_offset);
  put_be32 (hdr + 32, (uint32_t) t->rt_clusters);
  put_be32 (hdr + 36, h->nb_snapshots);
  put_be64 (hdr + 40, h->snapshots_offset);
  if (!pwrite_all (q, hdr, sizeof hdr, 24, error))
    return false;
  t->committed = true;

  g_free (q->rt);
  q->rt = g_steal_pointer (&t->rt);
  q->rt_size = t->rt_entries;
  q->rt_offset = t->rt_offset;
  q->rt_clusters = (uint32_t) t->rt_clusters;
  /* Both caches hold clean copies of tables that may be garbage now. */
  cache_invalidate (&q->rb_cache);
  cache_invalidate (&q->l2_cache);
  q->disk->size = h->size;
  return true;
}

/* After the caller updated its state: makes the header durable and releases the host space
 * of the clusters the new state no longer uses. */
static bool
txn_finish (Txn     *t,
            GError **error)
{
  Qcow2 *q = t->q;
  bool ok = vr_disk_fdatasync (q->disk, q->disk->fd, error);

  for (guint i = 0; ok && i < t->dropped->len; i++)
    {
      uint64_t c = g_array_index (t->dropped, uint64_t, i), rc;

      if (get_refcount (q, c, &rc, NULL) && rc == 0)
        {
          fallocate (q->disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     (off_t) (c << q->cluster_bits), (off_t) q->cluster_size);
          q->free_hint = MIN (q->free_hint, c);
        }
    }
  txn_abort (t);
  return ok;
}

/* Shared preamble: writable, readable table, everything of the active image on disk. */
static bool
prepare_metadata_change (Qcow2   *q,
                         GError **error)
{
  return check_writable (q, error) && snapshots_readable (q, error) && flush_locked (q, error);
}

static void
set_active_l1 (Qcow2     *q,
               uint64_t  *l1,
               uint32_t   size,
               uint64_t   offset)
{
  g_free (q->l1);
  g_free (q->l1_dirty);
  q->l1 = l1;
  q->l1_size = size;
  q->l1_offset = offset;
  q->l1_dirty = g_new0 (uint8_t, MAX (size, 1));
  q->any_l1_dirty = false;
}

static bool
qcow2_snapshot_create (VrDisk      *disk,
                       const char  *id,
                       const char  *name,
                       uint64_t     vm_clock_nsec,
                       GError     **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  g_autofree uint64_t *l1 = NULL;
  g_autofree uint8_t *buf = NULL;
  g_autofree uint8_t *table = NULL;
  g_autofree Snap *snaps = NULL;
  uint64_t table_len = 0, table_off = 0, l1_off = q->l1_offset;
  int64_t now = g_get_real_time ();
  Snap sn = { 0 };
  TxnHeader h;
  Txn t;

  if (!prepare_metadata_change (q, error))
    return false;
  if (id == NULL)
    {
      guint64 max = 0;

      for (uint32_t i = 0; i < q->nb_snapshots; i++)
        max = MAX (max, g_ascii_strtoull (q->snaps[i].id, NULL, 10));
      sn.id = g_strdup_printf ("%" G_GUINT64_FORMAT, max + 1);
    }
  else
    sn.id = g_strdup (id);
  sn.name = g_strdup (name);
  if (*sn.id == '\0' || strlen (sn.id) > MAX_SNAPSHOT_ID_LEN)
    {
      fail (q, error, VR_DISK_ERROR_INVALID, "a snapshot id must have 1 to %u bytes",
            MAX_SNAPSHOT_ID_LEN);
      goto out;
    }
  if (*sn.name == '\0' || strlen (sn.name) > MAX_SNAPSHOT_NAME_LEN)
    {
      fail (q, error, VR_DISK_ERROR_INVALID, "a snapshot name must have 1 to %u bytes",
            MAX_SNAPSHOT_NAME_LEN);
      goto out;
    }
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    if (strcmp (q->snaps[i].id, sn.id) == 0 || strcmp (q->snaps[i].name, sn.name) == 0)
      {
        fail (q, error, VR_DISK_ERROR_INVALID, "a snapshot with %s “%s” exists already",
              strcmp (q->snaps[i].id, sn.id) == 0 ? "id" : "name",
              strcmp (q->snaps[i].id, sn.id) == 0 ? sn.id : sn.name);
        goto out;
      }
  if (q->nb_snapshots >= MAX_SNAPSHOTS)
    {
      fail (q, error, VR_DISK_ERROR_NO_SPACE, "qcow2 image has %u snapshots already (the "
            "limit)", q->nb_snapshots);
      goto out;
    }
  /* The current L1 table becomes the snapshot's, with its L2 tables; the active image gets
   * copies of them below. */
  sn.l1_offset = q->l1_offset;
  sn.l1_size = q->l1_size;
  sn.date_sec = (uint32_t) (now / G_USEC_PER_SEC);
  sn.date_nsec = (uint32_t) (now % G_USEC_PER_SEC) * 1000;
  sn.vm_clock_nsec = vm_clock_nsec;
  sn.disk_size = disk->size;
  sn.icount = UINT64_MAX;
  snaps = g_new0 (Snap, q->nb_snapshots + 1);
  if (q->nb_snapshots > 0)
    memcpy (snaps, q->snaps, sizeof (Snap) * q->nb_snapshots);
  snaps[q->nb_snapshots] = sn;
  table = build_snapshot_table (snaps, q->nb_snapshots + 1, q->cluster_size, &table_len);
  if (table_len > MAX_SNAPSHOT_TABLE_BYTES)
    {
      fail (q, error, VR_DISK_ERROR_NO_SPACE, "qcow2 snapshot table would exceed %u MiB",
            MAX_SNAPSHOT_TABLE_BYTES >> 20);
      goto out;
    }

  txn_init (&t, q);
  buf = g_malloc (q->cluster_size);
  l1 = g_new0 (uint64_t, MAX (q->l1_size, 1));
  for (uint32_t i = 0; i < q->l1_size; i++)
    {
      uint64_t l2off = q->l1[i] & L1E_OFFSET_MASK, copy;

      if (l2off == 0)
        continue;
      if (!txn_copy_l2 (&t, l2off, buf, &copy, error))
        goto abort;
      l1[i] = copy | OFLAG_COPIED;
    }
  if (q->l1_size > 0 && !txn_write_l1 (&t, l1, q->l1_size, &l1_off, error))
    goto abort;
  if (!txn_write_new (&t, table, table_len, &table_off, error)
      || !txn_add_range (&t, q->snapshots_offset, q->snapshots_size, -1, error))
    goto abort;
  h = (TxnHeader) { disk->size, q->l1_size, l1_off, q->nb_snapshots + 1, table_off };
  if (!txn_commit (&t, &h, error))
    goto abort;

  g_free (q->snaps);
  q->snaps = g_steal_pointer (&snaps);
  q->nb_snapshots++;
  q->snapshots_offset = table_off;
  q->snapshots_size = table_len;
  set_active_l1 (q, g_steal_pointer (&l1), q->l1_size, l1_off);
  return txn_finish (&t, error);

abort:
  txn_abort (&t);
out:
  snap_clear (&sn);
  return false;
}

static bool
qcow2_snapshot_apply (VrDisk      *disk,
                      const char  *id_or_name,
                      GError     **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  g_autofree uint64_t *sl1 = NULL;
  g_autofree uint64_t *l1 = NULL;
  g_autofree uint8_t *buf = NULL;
  g_autofree char *what = NULL;
  uint64_t l1_off = q->l1_offset, entries;
  uint32_t l1_size;
  const Snap *sn;
  TxnHeader h;
  Txn t;
  int k;

  if (!prepare_metadata_change (q, error))
    return false;
  k = find_snapshot (q, id_or_name);
  if (k < 0)
    return fail (q, error, VR_DISK_ERROR_NOT_FOUND, "no snapshot “%s”", id_or_name);
  sn = &q->snaps[k];
  entries = MAX (sn->l1_size, l1_entries_for (q, sn->disk_size));
  if (entries * 8 > MAX_L1_BYTES)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "snapshot “%s” has a disk size too large for its cluster size", sn->id);
  l1_size = (uint32_t) entries;
  what = g_strdup_printf ("qcow2 L1 table of snapshot “%s”", sn->id);
  if (!read_l1_table (q, sn->l1_offset, sn->l1_size, l1_size, what, &sl1, error))
    return false;

  txn_init (&t, q);
  buf = g_malloc (q->cluster_size);
  l1 = g_new0 (uint64_t, MAX (l1_size, 1));
  /* The snapshot's tables stay the snapshot's: the active image gets copies. */
  for (uint32_t i = 0; i < sn->l1_size; i++)
    {
      uint64_t l2off = sl1[i] & L1E_OFFSET_MASK, copy;

      if (l2off == 0)
        continue;
      if (!txn_copy_l2 (&t, l2off, buf, &copy, error))
        goto abort;
      l1[i] = copy | OFLAG_COPIED;
    }
  /* The current state goes away. */
  if (!txn_drop_l1 (&t, q->l1, q->l1_size, buf, error)
      || !txn_add_range (&t, q->l1_offset, (uint64_t) q->l1_size * 8, -1, error))
    goto abort;
  if (l1_size > 0 && !txn_write_l1 (&t, l1, l1_size, &l1_off, error))
    goto abort;
  for (uint32_t i = 0; i < q->nb_snapshots; i++)
    if (!txn_check_kept_l1 (&t, q->snaps[i].l1_offset, q->snaps[i].l1_size, NULL, error))
      goto abort;
  if (!txn_check_kept (&t, q->snapshots_offset, q->snapshots_size, "snapshot table", error))
    goto abort;
  h = (TxnHeader) { sn->disk_size, l1_size, l1_off, q->nb_snapshots, q->snapshots_offset };
  if (!txn_commit (&t, &h, error))
    goto abort;
  set_active_l1 (q, g_steal_pointer (&l1), l1_size, l1_off);
  return txn_finish (&t, error);

abort:
  txn_abort (&t);
  return false;
}

static bool
qcow2_snapshot_delete (VrDisk      *disk,
                       const char  *id_or_name,
                       GError     **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);
  g_autofree uint64_t *sl1 = NULL;
  g_autofree uint64_t *l1 = NULL;
  g_autofree uint8_t *buf = NULL;
  g_autofree uint8_t *table = NULL;
  g_autofree char *what = NULL;
  g_autofree Snap *rest = NULL;
  uint64_t l1_off = q->l1_offset, table_len = 0, table_off = 0;
  uint32_t n;
  bool changed;
  const Snap *sn;
  TxnHeader h;
  Txn t;
  int k;

  if (!prepare_metadata_change (q, error))
    return false;
  k = find_snapshot (q, id_or_name);
  if (k < 0)
    return fail (q, error, VR_DISK_ERROR_NOT_FOUND, "no snapshot “%s”", id_or_name);
  sn = &q->snaps[k];
  what = g_strdup_printf ("qcow2 L1 table of snapshot “%s”", sn->id);
  if (!read_l1_table (q, sn->l1_offset, sn->l1_size, 0, what, &sl1, error))
    return false;
  n = q->nb_snapshots - 1;
  rest = g_new0 (Snap, MAX (n, 1));
  memcpy (rest, q->snaps, sizeof (Snap) * (size_t) k);
  memcpy (rest + k, q->snaps + k + 1, sizeof (Snap) * (n - (uint32_t) k));
  if (n > 0)
    table = build_snapshot_table (rest, n, q->cluster_size, &table_len);

  txn_init (&t, q);
  buf = g_malloc (q->cluster_size);
  l1 = g_new0 (uint64_t, MAX (q->l1_size, 1));
  if (!txn_drop_l1 (&t, sl1, sn->l1_size, buf, error)
      || !txn_add_range (&t, sn->l1_offset, (uint64_t) sn->l1_size * 8, -1, error)
      || !txn_fix_active (&t, l1, buf, &changed, error))
    goto abort;
  if (changed && q->l1_size > 0)
    {
      if (!txn_write_l1 (&t, l1, q->l1_size, &l1_off, error)
          || !txn_add_range (&t, q->l1_offset, (uint64_t) q->l1_size * 8, -1, error))
        goto abort;
    }
  if (!txn_write_new (&t, table, table_len, &table_off, error)
      || !txn_add_range (&t, q->snapshots_offset, q->snapshots_size, -1, error))
    goto abort;
  if (!txn_check_kept_l1 (&t, l1_off, q->l1_size, l1, error))
    goto abort;
  for (uint32_t i = 0; i < n; i++)
    if (!txn_check_kept_l1 (&t, rest[i].l1_offset, rest[i].l1_size, NULL, error))
      goto abort;
  h = (TxnHeader) { disk->size, q->l1_size, l1_off, n, table_off };
  if (!txn_commit (&t, &h, error))
    goto abort;

  snap_clear (&q->snaps[k]);
  g_free (q->snaps);
  q->snaps = n > 0 ? g_steal_pointer (&rest) : NULL;
  q->nb_snapshots = n;
  q->snapshots_offset = table_off;
  q->snapshots_size = table_len;
  if (changed)
    set_active_l1 (q, g_steal_pointer (&l1), q->l1_size, l1_off);
  return txn_finish (&t, error);

abort:
  txn_abort (&t);
  return false;
}

static bool
qcow2_resize_locked (Qcow2     *q,
                     uint64_t   new_size,
                     GError   **error)
{
  VrDisk *disk = q->disk;
  uint64_t entries = l1_entries_for (q, new_size);
  g_autofree uint64_t *l1 = NULL;
  uint64_t l1_off;
  TxnHeader h;
  Txn t;

  if (entries * 8 > MAX_L1_BYTES)
    return fail (q, error, VR_DISK_ERROR_INVALID,
                 "%" G_GUINT64_FORMAT " bytes is too large for this image's %" G_GUINT64_FORMAT
                 "-byte clusters", new_size, q->cluster_size);
  if (!prepare_metadata_change (q, error))
    return false;
  if (entries <= q->l1_size)
    {
      uint8_t be[8];

      /* One 8-byte write: atomic. */
      put_be64 (be, new_size);
      if (!pwrite_all (q, be, 8, 24, error))
        return false;
      disk->size = new_size;
      return vr_disk_fdatasync (disk, disk->fd, error);
    }
  /* A larger L1 table (the entries keep their flags: the L2 tables do not change). */
  txn_init (&t, q);
  l1 = g_new0 (uint64_t, entries);
  memcpy (l1, q->l1, (size_t) q->l1_size * 8);
  if (!txn_write_l1 (&t, l1, (uint32_t) entries, &l1_off, error)
      || !txn_add_range (&t, q->l1_offset, (uint64_t) q->l1_size * 8, -1, error))
    goto abort;
  h = (TxnHeader) { new_size, (uint32_t) entries, l1_off, q->nb_snapshots,
                    q->snapshots_offset };
  if (!txn_commit (&t, &h, error))
    goto abort;
  set_active_l1 (q, g_steal_pointer (&l1), (uint32_t) entries, l1_off);
  return txn_finish (&t, error);

abort:
  txn_abort (&t);
  return false;
}

static bool
qcow2_resize (VrDisk    *disk,
              uint64_t   new_size,
              bool       allow_shrink,
              GError   **error)
{
  Qcow2 *q = disk->priv;
  uint64_t old_size = disk->size, bsize;

  if (new_size == old_size)
    return true;
  if (new_size < old_size)
    return fail (q, error, VR_DISK_ERROR_INVALID,
                 "shrinking a qcow2 image (from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                 " bytes) is not supported", old_size, new_size);
  if ((new_size & 511) != 0)
    return fail (q, error, VR_DISK_ERROR_INVALID,
                 "the new size must be a multiple of 512 (%" G_GUINT64_FORMAT " is not)",
                 new_size);
  {
    g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);

    /* QEMU's rule: v2 did not require snapshots to record their disk size. */
    if (q->version < 3 && q->nb_snapshots > 0)
      return fail (q, error, VR_DISK_ERROR_UNSUPPORTED,
                   "cannot resize a qcow2 v2 image that has internal snapshots");
    if (!qcow2_resize_locked (q, new_size, error))
      return false;
  }
  /* The new area must read as zeroes, not as the backing file's data there (nor as what the
   * last old cluster held past the old end). */
  bsize = q->backing != NULL ? vr_disk_get_size (q->backing) : 0;
  if (bsize > old_size)
    return zero_or_discard (disk, old_size, MIN (new_size, bsize) - old_size, true, false,
                            error);
  return true;
}

static void
qcow2_info (VrDisk     *disk,
            VrDiskInfo *info)
{
  Qcow2 *q = disk->priv;

  info->cluster_size = (uint32_t) q->cluster_size;
  info->qcow2_version = q->version;
  info->refcount_bits = 1u << q->refcount_order;
  info->lazy_refcounts = (q->compat & COMPAT_LAZY_REFCOUNTS) != 0;
  info->dirty = (q->incompat & INCOMPAT_DIRTY) != 0;
  info->corrupt = (q->incompat & INCOMPAT_CORRUPT) != 0;
  info->encrypted = q->crypt_method != 0;
  info->nb_snapshots = q->nb_snapshots;
  info->image_end_offset = q->file_end;
  info->backing_file = g_strdup (q->backing_name);
  info->backing_file_full = g_strdup (q->backing_full);
  if (q->backing_fmt != NULL)
    info->has_backing_format = vr_disk_format_from_string (q->backing_fmt,
                                                           &info->backing_format, NULL);
}

static void
qcow2_free (Qcow2 *q)
{
  if (q == NULL)
    return;
  vr_disk_close (q->backing);
  cache_clear (&q->l2_cache);
  cache_clear (&q->rb_cache);
  g_free (q->l1);
  g_free (q->l1_dirty);
  g_free (q->rt);
  g_free (q->backing_name);
  g_free (q->backing_full);
  g_free (q->backing_fmt);
  snaps_free (q->snaps, q->nb_snapshots);
  g_free (q->snapshots_error);
  free (q->cbuf);
  free (q->zbuf);
  if (q->pending_free)
    g_array_unref (q->pending_free);
  g_mutex_clear (&q->lock);
  g_free (q);
}

static void
qcow2_close (VrDisk *disk)
{
  qcow2_free (disk->priv);
  disk->priv = NULL;
}

static const VrDiskOps qcow2_ops = {
  .preadv = qcow2_preadv,
  .pwritev = qcow2_pwritev,
  .flush = qcow2_flush,
  .discard = qcow2_discard,
  .write_zeroes = qcow2_write_zeroes,
  .block_status = qcow2_block_status,
  .info = qcow2_info,
  .close = qcow2_close,
  .snapshot_list = qcow2_snapshot_list,
  .snapshot_create = qcow2_snapshot_create,
  .snapshot_apply = qcow2_snapshot_apply,
  .snapshot_delete = qcow2_snapshot_delete,
  .resize = qcow2_resize,
};

/* Opening */

static char *
feature_names (const uint8_t *table,
               size_t         table_len,
               uint64_t       bits)
{
  GString *s = g_string_new (NULL);

  for (unsigned b = 0; b < 64; b++)
    {
      const char *name = NULL;
      char buf[47];

      if (!(bits & (UINT64_C (1) << b)))
        continue;
      for (size_t i = 0; i + 48 <= table_len; i += 48)
        if (table[i] == 0 && table[i + 1] == b)
          {
            memcpy (buf, table + i + 2, 46);
            buf[46] = '\0';
            name = buf;
            break;
          }
      if (name == NULL)
        {
          switch (b)
            {
            case 2: name = "external data file"; break;
            case 3: name = "compression type"; break;
            case 4: name = "extended L2 entries"; break;
            default: name = NULL;
            }
        }
      if (s->len > 0)
        g_string_append (s, ", ");
      if (name != NULL)
        g_string_append (s, name);
      else
        g_string_append_printf (s, "unknown feature bit %u", b);
    }
  return g_string_free (s, FALSE);
}

static bool
qcow2_open (Qcow2              *q,
            VrDisk             *disk,
            const VrDiskChain  *chain,
            int                 depth,
            GError            **error)
{
  uint8_t hdr[112] = { 0 };
  g_autofree uint8_t *first = NULL;
  g_autofree uint8_t *feature_table = NULL;
  size_t feature_len = 0;
  struct stat st;
  uint64_t backing_offset, size, l1_needed, ext_end;
  uint32_t backing_size;
  size_t got = 0;

  if (fstat (disk->fd, &st) < 0)
    return fail (q, error, VR_DISK_ERROR_IO, "cannot stat: %s", g_strerror (errno));
  q->file_end = (uint64_t) st.st_size;
  if (!vr_disk_full_pread (disk->fd, hdr, sizeof hdr, 0, &got, error))
    return false;
  if (got < 72)
    return fail (q, error, VR_DISK_ERROR_CORRUPT, "file too short for a qcow2 header");
  if (be32_at (hdr) != QCOW2_MAGIC)
    return fail (q, error, VR_DISK_ERROR_CORRUPT, "not a qcow2 image (bad magic)");
  q->version = be32_at (hdr + 4);
  if (q->version != 2 && q->version != 3)
    return fail (q, error, VR_DISK_ERROR_UNSUPPORTED, "unsupported qcow2 version %u",
                 q->version);
  backing_offset = be64_at (hdr + 8);
  backing_size = be32_at (hdr + 16);
  q->cluster_bits = be32_at (hdr + 20);
  size = be64_at (hdr + 24);
  q->crypt_method = be32_at (hdr + 32);
  q->l1_size = be32_at (hdr + 36);
  q->l1_offset = be64_at (hdr + 40);
  q->rt_offset = be64_at (hdr + 48);
  q->rt_clusters = be32_at (hdr + 56);
  q->nb_snapshots = be32_at (hdr + 60);
  q->snapshots_offset = be64_at (hdr + 64);
  if (q->version == 3)
    {
      if (got < 104)
        return fail (q, error, VR_DISK_ERROR_CORRUPT, "file too short for a qcow2 v3 header");
      q->incompat = be64_at (hdr + 72);
      q->compat = be64_at (hdr + 80);
      q->autoclear = be64_at (hdr + 88);
      q->refcount_order = be32_at (hdr + 96);
      q->header_length = be32_at (hdr + 100);
    }
  else
    {
      q->refcount_order = 4;
      q->header_length = 72;
    }

  if (q->cluster_bits < 9 || q->cluster_bits > 21)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 cluster_bits %u is out of range (9 to 21)", q->cluster_bits);
  q->cluster_size = UINT64_C (1) << q->cluster_bits;
  q->l2_bits = q->cluster_bits - 3;
  q->l2_entries = q->cluster_size / 8;
  if (q->version == 3
      && (q->header_length < 104 || q->header_length > q->cluster_size
          || (q->header_length & 7) != 0))
    return fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 header length %u is invalid",
                 q->header_length);
  if (q->refcount_order > 6)
    return fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 refcount order %u is out of range",
                 q->refcount_order);
  q->rb_entries = (q->cluster_size * 8) >> q->refcount_order;
  q->refcount_max = q->refcount_order == 6 ? UINT64_MAX
                                           : (UINT64_C (1) << (1u << q->refcount_order)) - 1;
  if (size > (UINT64_C (1) << 62))
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 virtual size %" G_GUINT64_FORMAT " is too large", size);
  disk->size = size;
  q->csize_shift = 62 - (q->cluster_bits - 8);
  q->csize_mask = (UINT64_C (1) << (q->cluster_bits - 8)) - 1;
  q->coffset_mask = (UINT64_C (1) << q->csize_shift) - 1;

  /* The first cluster: extensions and the backing file name. */
  first = g_malloc0 (q->cluster_size);
  if (!vr_disk_full_pread (disk->fd, first, q->cluster_size, 0, NULL, error))
    return false;

  ext_end = q->cluster_size;
  if (backing_offset != 0)
    {
      if (backing_size == 0 || backing_size > 1023 || backing_offset >= q->cluster_size
          || backing_size > q->cluster_size - backing_offset
          || !in_file (q, backing_offset, backing_size))
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 backing file name (at 0x%" G_GINT64_MODIFIER "x, %u bytes) is "
                     "invalid", backing_offset, backing_size);
      q->backing_name = g_strndup ((const char *) first + backing_offset, backing_size);
      if (strlen (q->backing_name) != backing_size)
        return fail (q, error, VR_DISK_ERROR_CORRUPT, "qcow2 backing file name contains NUL");
      ext_end = backing_offset;
    }
  for (uint64_t off = q->header_length; off + 8 <= ext_end;)
    {
      uint32_t type = be32_at (first + off), len = be32_at (first + off + 4);

      off += 8;
      if (type == EXT_END)
        break;
      if (len > ext_end - off)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 header extension 0x%08x is too long (%u bytes)", type, len);
      if (type == EXT_BACKING_FORMAT)
        {
          if (len == 0 || len > 31)
            return fail (q, error, VR_DISK_ERROR_CORRUPT,
                         "qcow2 backing format extension is invalid");
          g_free (q->backing_fmt);
          q->backing_fmt = g_strndup ((const char *) first + off, len);
        }
      else if (type == EXT_FEATURE_TABLE)
        {
          g_free (feature_table);
          feature_table = g_memdup2 (first + off, len);
          feature_len = len;
        }
      off += ((uint64_t) len + 7) & ~UINT64_C (7);
    }

  if (q->incompat & ~INCOMPAT_SUPPORTED)
    {
      g_autofree char *names = feature_names (feature_table, feature_len,
                                              q->incompat & ~INCOMPAT_SUPPORTED);

      return fail (q, error, VR_DISK_ERROR_UNSUPPORTED,
                   "qcow2 image uses unsupported incompatible features: %s", names);
    }
  if (q->crypt_method != 0 && !disk->metadata_only)
    return fail (q, error, VR_DISK_ERROR_UNSUPPORTED,
                 "encrypted qcow2 images are not supported (decrypt it with qemu-img convert)");
  if ((q->incompat & INCOMPAT_CORRUPT) && !disk->readonly && !disk->repair_mode)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 image is marked corrupt; it can only be opened read-only (repair it "
                 "with “vireo-img check -r all”)");
  if ((q->incompat & INCOMPAT_DIRTY) && !disk->readonly && !disk->repair_mode)
    return fail (q, error, VR_DISK_ERROR_UNSUPPORTED,
                 "qcow2 image was not closed cleanly (lazy refcounts); repair it with "
                 "“vireo-img check -r all” before opening it read-write");

  /* L1 table. */
  l1_needed = (size + (q->cluster_size << q->l2_bits) - 1) >> (q->cluster_bits + q->l2_bits);
  if ((uint64_t) q->l1_size * 8 > MAX_L1_BYTES)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 L1 table of %u entries is too large (limit %u MiB)", q->l1_size,
                 MAX_L1_BYTES >> 20);
  if (q->l1_size < l1_needed)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 L1 table (%u entries) is too small for the virtual size", q->l1_size);
  if (q->l1_size > 0)
    {
      if ((q->l1_offset & (q->cluster_size - 1)) != 0)
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 L1 table offset 0x%" G_GINT64_MODIFIER "x is not cluster aligned",
                     q->l1_offset);
      if (!in_file (q, q->l1_offset, (uint64_t) q->l1_size * 8))
        return fail (q, error, VR_DISK_ERROR_CORRUPT,
                     "qcow2 L1 table at 0x%" G_GINT64_MODIFIER "x lies past the end of the file",
                     q->l1_offset);
    }
  q->l1 = g_new0 (uint64_t, MAX (q->l1_size, 1));
  q->l1_dirty = g_new0 (uint8_t, MAX (q->l1_size, 1));
  if (q->l1_size > 0)
    {
      if (!pread_exact (q, q->l1, (size_t) q->l1_size * 8, q->l1_offset, error))
        return false;
      for (uint32_t i = 0; i < q->l1_size; i++)
        q->l1[i] = GUINT64_FROM_BE (q->l1[i]);
    }

  /* Refcount table. */
  if (q->rt_clusters == 0 || ((uint64_t) q->rt_clusters << q->cluster_bits) > MAX_REFTABLE_BYTES)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 refcount table size (%u clusters) is invalid", q->rt_clusters);
  if ((q->rt_offset & (q->cluster_size - 1)) != 0 || q->rt_offset == 0)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 refcount table offset 0x%" G_GINT64_MODIFIER "x is invalid",
                 q->rt_offset);
  if (!in_file (q, q->rt_offset, (uint64_t) q->rt_clusters << q->cluster_bits))
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "qcow2 refcount table at 0x%" G_GINT64_MODIFIER "x lies past the end of the "
                 "file", q->rt_offset);
  q->rt_size = ((uint64_t) q->rt_clusters << q->cluster_bits) / 8;
  q->rt = g_new0 (uint64_t, q->rt_size);
  if (!pread_exact (q, q->rt, q->rt_size * 8, q->rt_offset, error))
    return false;
  for (uint64_t i = 0; i < q->rt_size; i++)
    q->rt[i] = GUINT64_FROM_BE (q->rt[i]);

  /* Internal snapshots. A damaged table fails the open, except for info and check (metadata
   * only), which report it. */
  {
    g_autoptr (GError) local_error = NULL;

    if (!read_snapshots (q, &local_error))
      {
        if (!disk->metadata_only)
          {
            g_propagate_error (error, g_steal_pointer (&local_error));
            return false;
          }
        q->snapshots_error = g_strdup (local_error->message);
      }
  }

  cache_init (&q->l2_cache, (unsigned) CLAMP ((4u << 20) >> q->cluster_bits, 4, 64),
              q->cluster_size);
  cache_init (&q->rb_cache, 4, q->cluster_size);
  q->cbuf = vr_disk_alloc_aligned (q->cluster_size);
  q->zbuf = vr_disk_alloc_aligned (2 * q->cluster_size + 512);

  /* Backing file. */
  if (q->backing_name != NULL)
    {
      VrDiskFormat bfmt;
      g_autoptr (GError) local_error = NULL;

      q->backing_full = vr_disk_resolve_relative (disk->filename, q->backing_name);
      if (!disk->metadata_only)
        {
          if (q->backing_fmt != NULL)
            {
              if (!vr_disk_format_from_string (q->backing_fmt, &bfmt, NULL))
                return fail (q, error, VR_DISK_ERROR_UNSUPPORTED,
                             "qcow2 backing file format “%s” is not supported", q->backing_fmt);
            }
          else if (!vr_disk_probe_format (q->backing_full, &bfmt, &local_error))
            return fail (q, error, VR_DISK_ERROR_NOT_FOUND, "cannot open the backing file: %s",
                         local_error->message);
          q->backing = vr_disk_open_internal (q->backing_full, bfmt, VR_DISK_OPEN_READONLY,
                                              false, chain, depth + 1, &local_error);
          if (q->backing == NULL)
            {
              if (g_str_has_prefix (local_error->message, "backing file chain deeper")
                  || strstr (local_error->message, ": backing file chain deeper") != NULL
                  || strstr (local_error->message, "backing file loop") != NULL)
                {
                  g_propagate_error (error, g_steal_pointer (&local_error));
                  return false;
                }
              return fail (q, error, local_error->code, "cannot open the backing file: %s",
                           local_error->message);
            }
        }
    }

  /* Clear autoclear bits we do not maintain (bitmaps) before the first write. */
  if (!disk->readonly && q->version == 3 && q->autoclear != 0)
    {
      uint8_t zero[8] = { 0 };

      if (!pwrite_all (q, zero, 8, 88, error) || !vr_disk_fdatasync (disk, disk->fd, error))
        return false;
      q->autoclear = 0;
    }
  return true;
}

bool
vr_qcow2_open (VrDisk             *disk,
               const VrDiskChain  *chain,
               int                 depth,
               GError            **error)
{
  Qcow2 *q = g_new0 (Qcow2, 1);

  g_mutex_init (&q->lock);
  q->disk = disk;
  q->cbuf_key = UINT64_MAX;
  q->pending_free = g_array_new (FALSE, FALSE, sizeof (Extent));
  if (!qcow2_open (q, disk, chain, depth, error))
    {
      qcow2_free (q);
      return false;
    }
  disk->priv = q;
  disk->ops = &qcow2_ops;
  return true;
}

/* Creation */

bool
vr_qcow2_create (int          fd,
                 const char  *path,
                 uint64_t     size,
                 const char  *backing,
                 const char  *backing_fmt,
                 GError     **error)
{
  const uint32_t cluster_bits = 16;
  const uint64_t cs = UINT64_C (1) << cluster_bits;
  uint64_t l1_size = (size + (cs << (cluster_bits - 3)) - 1) >> (2 * cluster_bits - 3);
  uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
  uint64_t total = 3 + l1_clusters, off;
  g_autofree uint8_t *buf = NULL;

  if (l1_size * 8 > MAX_L1_BYTES)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_INVALID,
                   "%s: size %" G_GUINT64_FORMAT " is too large for a qcow2 image with 64 KiB "
                   "clusters", path, size);
      return false;
    }
  buf = g_malloc0 (3 * cs);
  put_be32 (buf, QCOW2_MAGIC);
  put_be32 (buf + 4, 3);
  put_be32 (buf + 20, cluster_bits);
  put_be64 (buf + 24, size);
  put_be32 (buf + 36, (uint32_t) l1_size);
  put_be64 (buf + 40, 3 * cs);
  put_be64 (buf + 48, cs);
  put_be32 (buf + 56, 1);
  put_be32 (buf + 96, 4);
  put_be32 (buf + 100, 112);
  off = 112;
  if (backing != NULL)
    {
      size_t flen = strlen (backing_fmt), blen = strlen (backing);

      put_be32 (buf + off, EXT_BACKING_FORMAT);
      put_be32 (buf + off + 4, (uint32_t) flen);
      memcpy (buf + off + 8, backing_fmt, flen);
      off += 8 + ((flen + 7) & ~(size_t) 7);
      off += 8;  /* end of extensions */
      put_be64 (buf + 8, off);
      put_be32 (buf + 16, (uint32_t) blen);
      memcpy (buf + off, backing, blen);
    }
  /* Refcount table (cluster 1) and its first block (cluster 2). */
  put_be64 (buf + cs, 2 * cs);
  for (uint64_t i = 0; i < total; i++)
    put_be16 (buf + 2 * cs + 2 * i, 1);
  if (!vr_disk_full_pwrite (fd, buf, 3 * cs, 0, error))
    return false;
  if (ftruncate (fd, (off_t) (total * cs)) < 0)
    {
      g_set_error (error, VR_DISK_ERROR, VR_DISK_ERROR_IO, "%s: cannot set the size: %s", path,
                   g_strerror (errno));
      return false;
    }
  return true;
}

/* Check and repair */

typedef struct
{
  Qcow2             *q;
  VrDiskCheckResult *res;
  uint32_t          *refs;     /* computed references per cluster */
  uint64_t           nclusters;
} Check;

G_GNUC_PRINTF (3, 4) static void
check_msg (Check      *c,
           bool        corruption,
           const char *fmt,
           ...)
{
  va_list ap;

  va_start (ap, fmt);
  if (c->res->messages->len < 1000)
    g_ptr_array_add (c->res->messages, g_strdup_vprintf (fmt, ap));
  va_end (ap);
  if (corruption)
    c->res->corruptions++;
}

static void
check_ref (Check       *c,
           uint64_t     offset,
           uint64_t     len,
           const char  *what)
{
  Qcow2 *q = c->q;

  if (len == 0)
    return;
  for (uint64_t k = offset >> q->cluster_bits; k <= (offset + len - 1) >> q->cluster_bits; k++)
    {
      if (k >= c->nclusters)
        {
          check_msg (c, true, "ERROR %s at offset 0x%" G_GINT64_MODIFIER "x lies outside the "
                     "image file", what, k << q->cluster_bits);
          return;
        }
      if (c->refs[k] < UINT32_MAX)
        c->refs[k]++;
    }
}

static void
check_l1 (Check    *c,
          uint64_t  l1_offset,
          uint32_t  l1_size,
          bool      active,
          GError  **error)
{
  Qcow2 *q = c->q;
  g_autofree uint64_t *l1 = NULL;
  g_autofree uint8_t *l2 = g_malloc (q->cluster_size);

  if ((uint64_t) l1_size * 8 > MAX_L1_BYTES || (l1_offset & (q->cluster_size - 1)) != 0
      || !in_file (q, l1_offset, (uint64_t) l1_size * 8))
    {
      check_msg (c, true, "ERROR L1 table at 0x%" G_GINT64_MODIFIER "x is invalid", l1_offset);
      return;
    }
  check_ref (c, l1_offset, (uint64_t) l1_size * 8, "L1 table");
  if (active)
    l1 = g_memdup2 (q->l1, (size_t) l1_size * 8);
  else
    {
      l1 = g_new0 (uint64_t, MAX (l1_size, 1));
      if (!vr_disk_full_pread (q->disk->fd, l1, (size_t) l1_size * 8, l1_offset, NULL, NULL))
        {
          c->res->check_errors++;
          return;
        }
      for (uint32_t i = 0; i < l1_size; i++)
        l1[i] = GUINT64_FROM_BE (l1[i]);
    }
  for (uint32_t i = 0; i < l1_size; i++)
    {
      uint64_t l2off = l1[i] & L1E_OFFSET_MASK;

      if (l2off == 0)
        continue;
      if ((l2off & (q->cluster_size - 1)) != 0 || !in_file (q, l2off, q->cluster_size))
        {
          check_msg (c, true, "ERROR L2 table offset 0x%" G_GINT64_MODIFIER "x (L1 index %u) "
                     "is invalid", l2off, i);
          continue;
        }
      check_ref (c, l2off, q->cluster_size, "L2 table");
      if (!vr_disk_full_pread (q->disk->fd, l2, q->cluster_size, l2off, NULL, NULL))
        {
          c->res->check_errors++;
          continue;
        }
      for (uint64_t j = 0; j < q->l2_entries; j++)
        {
          uint64_t e = be64_at (l2 + 8 * j), host;

          if (e & OFLAG_COMPRESSED)
            {
              uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;

              host = e & q->coffset_mask;
              check_ref (c, host & ~UINT64_C (511), nsec * 512, "compressed cluster");
              if (active)
                {
                  c->res->allocated_clusters++;
                  c->res->compressed_clusters++;
                }
              continue;
            }
          host = e & L2E_OFFSET_MASK;
          if (host == 0)
            continue;
          if ((host & (q->cluster_size - 1)) != 0)
            {
              check_msg (c, true, "ERROR offset=0x%" G_GINT64_MODIFIER "x: cluster is not "
                         "properly aligned; L2 entry corrupted", host);
              continue;
            }
          if (host >= q->file_end)
            {
              check_msg (c, true, "ERROR data cluster at 0x%" G_GINT64_MODIFIER "x lies past "
                         "the end of the file", host);
              continue;
            }
          check_ref (c, host, q->cluster_size, "data cluster");
          if (active && !(e & OFLAG_ZERO))
            c->res->allocated_clusters++;
        }
    }
}

/* Fixes OFLAG_COPIED in the active L1/L2 tables; counts mismatches as corruptions. */
static bool
check_copied (Check   *c,
              bool     fix,
              GError **error)
{
  Qcow2 *q = c->q;

  for (uint32_t i = 0; i < q->l1_size; i++)
    {
      uint64_t l2off = q->l1[i] & L1E_OFFSET_MASK, k;
      uint8_t *table;
      bool want;

      if (l2off == 0 || (l2off & (q->cluster_size - 1)) != 0
          || !in_file (q, l2off, q->cluster_size))
        continue;
      k = l2off >> q->cluster_bits;
      {
        uint64_t rc;

        if (!get_refcount (q, k, &rc, error))
          return false;
        want = rc == 1;
      }
      if (want != ((q->l1[i] & OFLAG_COPIED) != 0))
        {
          check_msg (c, true, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%"
                     G_GINT64_MODIFIER "x", i, q->l1[i]);
          if (fix)
            {
              q->l1[i] = want ? q->l1[i] | OFLAG_COPIED : q->l1[i] & ~OFLAG_COPIED;
              q->l1_dirty[i] = 1;
              q->any_l1_dirty = true;
              c->res->corruptions--;
              c->res->corruptions_fixed++;
            }
        }
      table = cache_get (q, &q->l2_cache, l2off, false, "L2 table", error);
      if (table == NULL)
        return false;
      for (uint64_t j = 0; j < q->l2_entries; j++)
        {
          uint64_t e = be64_at (table + 8 * j), host = e & L2E_OFFSET_MASK, rc;

          if ((e & OFLAG_COMPRESSED) || host == 0 || (host & (q->cluster_size - 1)) != 0
              || host >= q->file_end)
            continue;
          if (!get_refcount (q, host >> q->cluster_bits, &rc, error))
            return false;
          want = rc == 1;
          if (want != ((e & OFLAG_COPIED) != 0))
            {
              check_msg (c, true, "ERROR OFLAG_COPIED data cluster: l2_entry=%"
                         G_GINT64_MODIFIER "x refcount=%" G_GUINT64_FORMAT, e, rc);
              if (fix)
                {
                  put_be64 (table + 8 * j, want ? e | OFLAG_COPIED : e & ~OFLAG_COPIED);
                  cache_mark_dirty (&q->l2_cache, l2off);
                  c->res->corruptions--;
                  c->res->corruptions_fixed++;
                  table = cache_get (q, &q->l2_cache, l2off, false, "L2 table", error);
                  if (table == NULL)
                    return false;
                }
            }
        }
    }
  return true;
}

/* Handles cluster k whose stored refcount rc differs from the computed want. */
static bool
check_mismatch (Check             *c,
                uint64_t           k,
                uint64_t           rc,
                uint64_t           want,
                VrDiskRepairMode   repair,
                GError           **error)
{
  Qcow2 *q = c->q;
  uint64_t boff;

  if (want > q->refcount_max)
    {
      check_msg (c, true, "ERROR cluster %" G_GUINT64_FORMAT " refcount overflow (%"
                 G_GUINT64_FORMAT " references, at most %" G_GUINT64_FORMAT ")", k, want,
                 q->refcount_max);
      return true;
    }
  if (rc > want)
    {
      check_msg (c, false, "Leaked cluster %" G_GUINT64_FORMAT " refcount=%"
                 G_GUINT64_FORMAT " reference=%" G_GUINT64_FORMAT, k, rc, want);
      c->res->leaks++;
      if (repair != VR_DISK_REPAIR_NONE)
        {
          if (!rt_block_offset (q, k / q->rb_entries, &boff, error)
              || !set_refcount_in_block (q, boff, k, want, error))
            return false;
          c->res->leaks--;
          c->res->leaks_fixed++;
        }
    }
  else
    {
      check_msg (c, true, "ERROR cluster %" G_GUINT64_FORMAT " refcount=%"
                 G_GUINT64_FORMAT " reference=%" G_GUINT64_FORMAT, k, rc, want);
      if (repair == VR_DISK_REPAIR_ALL)
        {
          if (!rt_block_offset (q, k / q->rb_entries, &boff, error))
            return false;
          if (boff == 0)
            {
              /* Allocate the missing block past everything referenced. */
              uint64_t noff, be, r = k / q->rb_entries;
              uint8_t *block;

              q->free_hint = MAX (q->free_hint, c->nclusters);
              if (!alloc_cluster (q, &noff, error))
                return false;
              block = cache_get (q, &q->rb_cache, noff, true, NULL, error);
              for (unsigned i = 0; i < q->rb_cache.n; i++)
                q->rb_cache.entries[i].dirty = false;
              if (block == NULL
                  || !pwrite_all (q, block, q->cluster_size, noff, error)
                  || !vr_disk_fdatasync (q->disk, q->disk->fd, error))
                return false;
              be = GUINT64_TO_BE (noff);
              if (!pwrite_all (q, &be, 8, q->rt_offset + r * 8, error))
                return false;
              q->rt[r] = noff;
              boff = noff;
            }
          if (!set_refcount_in_block (q, boff, k, want, error))
            return false;
          c->res->corruptions--;
          c->res->corruptions_fixed++;
        }
    }
  return true;
}

static bool
check_pass (Qcow2              *q,
            VrDiskRepairMode    repair,
            VrDiskCheckResult  *res,
            GError            **error)
{
  Check c = { q, res, NULL, 0 };
  uint64_t max_covered;

  c.nclusters = (q->file_end + q->cluster_size - 1) >> q->cluster_bits;
  if (c.nclusters > (UINT64_C (1) << 28))
    return fail (q, error, VR_DISK_ERROR_UNSUPPORTED, "image too large to check");
  c.refs = g_new0 (uint32_t, MAX (c.nclusters, 1));

  check_ref (&c, 0, q->cluster_size, "header");
  check_l1 (&c, q->l1_offset, q->l1_size, true, error);
  check_ref (&c, q->rt_offset, (uint64_t) q->rt_clusters << q->cluster_bits,
             "refcount table");
  for (uint64_t i = 0; i < q->rt_size; i++)
    {
      uint64_t b = q->rt[i] & REFT_OFFSET_MASK;

      if (b == 0)
        continue;
      if ((b & (q->cluster_size - 1)) != 0 || !in_file (q, b, q->cluster_size))
        {
          check_msg (&c, true, "ERROR refcount block %" G_GUINT64_FORMAT " at 0x%"
                     G_GINT64_MODIFIER "x is invalid", i, b);
          q->rt[i] = 0;  /* in memory only: treat it as missing below */
          continue;
        }
      check_ref (&c, b, q->cluster_size, "refcount block");
    }
  /* Internal snapshots: their table, L1 tables and everything below. */
  if (q->snapshots_error != NULL)
    check_msg (&c, true, "ERROR snapshot table: %s", q->snapshots_error);
  else if (q->nb_snapshots > 0)
    {
      for (uint32_t s = 0; s < q->nb_snapshots; s++)
        check_l1 (&c, q->snaps[s].l1_offset, q->snaps[s].l1_size, false, error);
      check_ref (&c, q->snapshots_offset, q->snapshots_size, "snapshot table");
    }

  /* Compare with the stored refcounts, block by block. */
  max_covered = q->rt_size * q->rb_entries;
  for (uint64_t r = 0; r < q->rt_size; r++)
    {
      uint64_t first = r * q->rb_entries, last = first + q->rb_entries;

      for (uint64_t k = first; k < last; k++)
        {
          uint64_t rc = 0, want = k < c.nclusters ? c.refs[k] : 0;

          if (q->rt[r] == 0 && k >= c.nclusters)
            break;
          if (q->rt[r] != 0 && !get_refcount (q, k, &rc, error))
            {
              g_free (c.refs);
              return false;
            }
          if (rc != want && !check_mismatch (&c, k, rc, want, repair, error))
            {
              g_free (c.refs);
              return false;
            }
        }
    }
  for (uint64_t k = max_covered; k < c.nclusters; k++)
    if (c.refs[k] > 0)
      check_msg (&c, true, "ERROR cluster %" G_GUINT64_FORMAT " is referenced but not covered "
                 "by the refcount table", k);

  if (!check_copied (&c, repair == VR_DISK_REPAIR_ALL, error))
    {
      g_free (c.refs);
      return false;
    }
  res->total_clusters = (q->disk->size + q->cluster_size - 1) >> q->cluster_bits;
  res->image_end_offset = q->file_end;
  g_free (c.refs);
  return true;
}

bool
vr_qcow2_check (VrDisk             *disk,
                VrDiskRepairMode    repair,
                VrDiskCheckResult  *result,
                GError            **error)
{
  Qcow2 *q = disk->priv;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&q->lock);

  result->checked = true;
  if (repair != VR_DISK_REPAIR_NONE && q->snapshots_error != NULL)
    return fail (q, error, VR_DISK_ERROR_CORRUPT,
                 "cannot repair: the snapshot table is damaged (%s), so the clusters the "
                 "snapshots use are unknown", q->snapshots_error);
  if (!check_pass (q, repair, result, error))
    return false;
  if (repair != VR_DISK_REPAIR_NONE && (result->leaks_fixed > 0 || result->corruptions_fixed > 0
                                        || (q->incompat & (INCOMPAT_DIRTY | INCOMPAT_CORRUPT))))
    {
      VrDiskCheckResult again = { 0 };
      uint64_t fixed_leaks = result->leaks_fixed, fixed_corruptions = result->corruptions_fixed;

      if (!flush_locked (q, error))
        return false;
      again.messages = g_ptr_array_new_with_free_func (g_free);
      cache_invalidate (&q->rb_cache);
      if (!check_pass (q, VR_DISK_REPAIR_NONE, &again, error))
        {
          g_ptr_array_unref (again.messages);
          return false;
        }
      g_ptr_array_unref (result->messages);
      *result = again;
      result->checked = true;
      result->leaks_fixed = fixed_leaks;
      result->corruptions_fixed = fixed_corruptions;
      if (result->corruptions == 0 && result->leaks == 0 && result->check_errors == 0
          && (q->incompat & (INCOMPAT_DIRTY | INCOMPAT_CORRUPT)))
        {
          uint8_t be[8];

          if (repair == VR_DISK_REPAIR_ALL || !(q->incompat & INCOMPAT_CORRUPT))
            {
              q->incompat &= ~(INCOMPAT_DIRTY | (repair == VR_DISK_REPAIR_ALL
                                                 ? INCOMPAT_CORRUPT : 0));
              put_be64 (be, q->incompat);
              if (!pwrite_all (q, be, 8, 72, error)
                  || !vr_disk_fdatasync (disk, disk->fd, error))
                return false;
            }
        }
    }
  return true;
}
