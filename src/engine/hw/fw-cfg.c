/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * QEMU's fw_cfg, I/O port flavour (docs/specs/fw_cfg.rst in QEMU):
 *   0x510  selector, 16-bit write (a byte write there is a data write, which is ignored);
 *          byte reads there read data, as on QEMU's combined port
 *   0x511  data, byte reads advance the offset; reads past the end give 0
 *   0x514  DMA address, big-endian: a 32-bit write at 0x514 sets the high half, one at 0x518
 *          the low half and starts the transfer; a 64-bit write at 0x514 does both. Reads
 *          give the signature "QEMU CFG".
 *
 * Items: FW_CFG_SIGNATURE, FW_CFG_ID (traditional + DMA), FW_CFG_FILE_DIR (built from the
 * files, sorted by name as QEMU does, selectors 0x20 + index in that order), plus any item
 * the machine adds. Nothing is guest-writable: DMA writes fail with the error bit.
 *
 * DMA: the control structure { be32 control; be32 length; be64 address } and the buffer
 * are guest memory, accessed only through vr_memory_read/write/translate, which check the
 * whole range is RAM. A transfer that leaves RAM stops with the error bit set.
 *
 * Locking: `lock` protects the items and the current selection; the DMA runs under it on
 * the vCPU thread (vr_memory is safe from any thread).
 */

#include "config.h"

#include "hw.h"
#include "state.h"

#include <string.h>

#define FW_CFG_SIGNATURE    0x00
#define FW_CFG_ID           0x01
#define FW_CFG_FILE_DIR     0x19
#define FW_CFG_FILE_FIRST   0x20
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ARCH_LOCAL   0x8000
#define FW_CFG_ENTRY_MASK   0x3fff
#define FW_CFG_INVALID      0xffff
#define FW_CFG_MAX_FILES    (FW_CFG_ENTRY_MASK + 1 - FW_CFG_FILE_FIRST)
#define FW_CFG_NAME_LEN     56

#define FW_CFG_VERSION      0x01
#define FW_CFG_VERSION_DMA  0x02

#define DMA_CTL_ERROR       0x01
#define DMA_CTL_READ        0x02
#define DMA_CTL_SKIP        0x04
#define DMA_CTL_SELECT      0x08
#define DMA_CTL_WRITE       0x10

#define OFF_SELECTOR        0
#define OFF_DATA            1
#define OFF_DMA             4
#define FW_CFG_IO_SIZE      12

#define DMA_CHUNK           (64 * 1024)

typedef struct
{
  char   *name;
  GBytes *data;
} FwCfgFile;

typedef struct
{
  VrDevice     parent;
  GMutex       lock;
  VrBus       *pio;
  VrMemory    *memory;

  GHashTable  *items;       /* key (without the write bit) → GBytes */
  GPtrArray   *files;       /* FwCfgFile, sorted by name */

  uint16_t     cur_key;     /* FW_CFG_INVALID when nothing is selected */
  GBytes      *cur;         /* the selected item (a reference), or NULL */
  uint32_t     cur_offset;
  uint8_t      dma_addr[8]; /* big-endian, as written */
} VrFwCfg;

static void
fw_cfg_file_free (gpointer data)
{
  FwCfgFile *f = data;

  g_free (f->name);
  g_bytes_unref (f->data);
  g_free (f);
}

static GBytes *
fw_cfg_lookup (VrFwCfg *s, uint16_t key)
{
  if (key == FW_CFG_INVALID)
    return NULL;
  if (!(key & FW_CFG_ARCH_LOCAL) && key >= FW_CFG_FILE_FIRST)
    {
      unsigned index = key - FW_CFG_FILE_FIRST;
      FwCfgFile *f;

      if (index >= s->files->len)
        return NULL;
      f = g_ptr_array_index (s->files, index);
      return f->data;
    }
  return g_hash_table_lookup (s->items, GUINT_TO_POINTER (key));
}

static void
fw_cfg_select (VrFwCfg *s, uint16_t value)
{
  /* The write channel bit only says how the guest means to use the item. */
  uint16_t key = value & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK);
  GBytes *item = fw_cfg_lookup (s, key);

  g_clear_pointer (&s->cur, g_bytes_unref);
  s->cur_offset = 0;
  if (item)
    {
      s->cur_key = key;
      s->cur = g_bytes_ref (item);
    }
  else
    s->cur_key = FW_CFG_INVALID;
}

static uint8_t
fw_cfg_read_byte (VrFwCfg *s)
{
  gsize size;
  const uint8_t *data;

  if (!s->cur)
    return 0;
  data = g_bytes_get_data (s->cur, &size);
  if (s->cur_offset >= size)
    return 0;
  return data[s->cur_offset++];
}

/* Fills guest [addr, addr + len) with zeroes. */
static bool
fw_cfg_dma_zero (VrFwCfg *s, uint64_t addr, uint64_t len)
{
  void *host = vr_memory_translate (s->memory, addr, len);

  if (!host)
    return false;
  memset (host, 0, len);
  return true;
}

static void
fw_cfg_dma_transfer (VrFwCfg *s, uint64_t desc)
{
  uint8_t raw[16];
  uint32_t be32;
  uint64_t be64;
  uint32_t control;
  uint32_t status = 0;
  uint64_t length;
  uint64_t address;
  bool read = false;
  bool write = false;

  if (!s->memory || !vr_memory_read (s->memory, desc, raw, sizeof raw))
    {
      uint32_t err = GUINT32_TO_BE (DMA_CTL_ERROR);

      /* The descriptor is not in RAM: nothing to report into, unless the first word is. */
      if (s->memory)
        vr_memory_write (s->memory, desc, &err, sizeof err);
      return;
    }
  memcpy (&be32, raw, 4);
  control = GUINT32_FROM_BE (be32);
  memcpy (&be32, raw + 4, 4);
  length = GUINT32_FROM_BE (be32);
  memcpy (&be64, raw + 8, 8);
  address = GUINT64_FROM_BE (be64);

  if (control & DMA_CTL_SELECT)
    fw_cfg_select (s, control >> 16);

  if (control & DMA_CTL_READ)
    read = true;
  else if (control & DMA_CTL_WRITE)
    write = true;
  else if (!(control & DMA_CTL_SKIP))
    length = 0;

  while (length > 0 && !(status & DMA_CTL_ERROR))
    {
      gsize size = 0;
      const uint8_t *data = s->cur ? g_bytes_get_data (s->cur, &size) : NULL;
      uint64_t len;

      if (!data || s->cur_offset >= size)
        {
          /* Past the end: reads give zeroes, writes fail. */
          len = MIN (length, (uint64_t) DMA_CHUNK);
          if (read && !fw_cfg_dma_zero (s, address, len))
            status |= DMA_CTL_ERROR;
          if (write)
            status |= DMA_CTL_ERROR;
          if (!read && !write)
            len = length;  /* skipping past the end costs nothing */
        }
      else
        {
          len = MIN (length, (uint64_t) (size - s->cur_offset));
          if (read && !vr_memory_write (s->memory, address, data + s->cur_offset, len))
            status |= DMA_CTL_ERROR;
          if (write)
            status |= DMA_CTL_ERROR;  /* no item is writable */
          s->cur_offset += (uint32_t) len;
        }
      address += len;
      length -= len;
    }

  status = GUINT32_TO_BE (status);
  vr_memory_write (s->memory, desc, &status, sizeof status);
}

static void
fw_cfg_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrFwCfg *s = opaque;
  static const uint8_t signature[8] = { 'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G' };

  if (offset >= FW_CFG_IO_SIZE || len > FW_CFG_IO_SIZE - offset)
    {
      if (!is_write)
        memset (data, 0xff, len);
      return;
    }

  g_mutex_lock (&s->lock);
  if (offset == OFF_SELECTOR || offset == OFF_DATA)
    {
      if (is_write)
        {
          if (offset == OFF_SELECTOR && len == 2)
            fw_cfg_select (s, (uint16_t) vr_io_get (data, 2));
          /* Data writes are ignored, as in QEMU since 2.4. */
        }
      else
        {
          for (uint32_t i = 0; i < len; i++)
            data[i] = fw_cfg_read_byte (s);
        }
    }
  else if (offset >= OFF_DMA)
    {
      uint64_t rel = offset - OFF_DMA;

      if (!is_write)
        memcpy (data, signature + rel, len);
      else if (len == 4 && rel == 0)
        {
          memcpy (s->dma_addr, data, 4);
          memset (s->dma_addr + 4, 0, 4);
        }
      else if ((len == 4 && rel == 4) || (len == 8 && rel == 0))
        {
          uint64_t addr;

          memcpy (s->dma_addr + rel, data, len);
          memcpy (&addr, s->dma_addr, sizeof addr);
          addr = GUINT64_FROM_BE (addr);
          memset (s->dma_addr, 0, sizeof s->dma_addr);
          fw_cfg_dma_transfer (s, addr);
        }
    }
  else if (!is_write)
    memset (data, 0xff, len);
  g_mutex_unlock (&s->lock);
}

static void
fw_cfg_set_item_locked (VrFwCfg *s, uint16_t key, GBytes *bytes)
{
  g_hash_table_replace (s->items, GUINT_TO_POINTER (key), bytes);
  if (s->cur_key == key)
    {
      g_clear_pointer (&s->cur, g_bytes_unref);
      s->cur = g_bytes_ref (bytes);
    }
}

static int
fw_cfg_file_cmp (gconstpointer a, gconstpointer b)
{
  const FwCfgFile *fa = *(const FwCfgFile * const *) a;
  const FwCfgFile *fb = *(const FwCfgFile * const *) b;

  return strcmp (fa->name, fb->name);
}

static void
fw_cfg_rebuild_dir (VrFwCfg *s)
{
  guint n = s->files->len;
  gsize size = 4 + (gsize) n * 64;
  uint8_t *dir = g_malloc0 (size);
  uint32_t count = GUINT32_TO_BE (n);

  memcpy (dir, &count, 4);
  for (guint i = 0; i < n; i++)
    {
      FwCfgFile *f = g_ptr_array_index (s->files, i);
      uint8_t *e = dir + 4 + (gsize) i * 64;
      uint32_t fsize = GUINT32_TO_BE ((uint32_t) g_bytes_get_size (f->data));
      uint16_t select = GUINT16_TO_BE (FW_CFG_FILE_FIRST + i);

      memcpy (e, &fsize, 4);
      memcpy (e + 4, &select, 2);
      strncpy ((char *) e + 8, f->name, FW_CFG_NAME_LEN - 1);
    }
  fw_cfg_set_item_locked (s, FW_CFG_FILE_DIR, g_bytes_new_take (dir, size));
}

void
vr_fw_cfg_add_item (VrDevice   *dev,
                    uint16_t    key,
                    const void *data,
                    size_t      len)
{
  VrFwCfg *s = (VrFwCfg *) dev;

  g_return_if_fail (dev != NULL);
  g_return_if_fail (data != NULL || len == 0);
  g_return_if_fail (len <= G_MAXUINT32);
  key &= FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK;
  g_return_if_fail ((key & FW_CFG_ENTRY_MASK) < FW_CFG_FILE_FIRST);
  g_return_if_fail (key != FW_CFG_FILE_DIR);

  g_mutex_lock (&s->lock);
  fw_cfg_set_item_locked (s, key, g_bytes_new (data, len));
  g_mutex_unlock (&s->lock);
}

void
vr_fw_cfg_add_file (VrDevice   *dev,
                    const char *name,
                    const void *data,
                    size_t      len)
{
  VrFwCfg *s = (VrFwCfg *) dev;
  FwCfgFile *f;
  GBytes *selected = NULL;

  g_return_if_fail (dev != NULL);
  g_return_if_fail (name != NULL && *name != '\0' && strlen (name) < FW_CFG_NAME_LEN);
  g_return_if_fail (data != NULL || len == 0);
  g_return_if_fail (len <= G_MAXUINT32);

  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->files->len; i++)
    {
      f = g_ptr_array_index (s->files, i);
      if (strcmp (f->name, name) == 0)
        {
          g_bytes_unref (f->data);
          f->data = g_bytes_new (data, len);
          if (s->cur_key == FW_CFG_FILE_FIRST + i)
            {
              g_clear_pointer (&s->cur, g_bytes_unref);
              s->cur = g_bytes_ref (f->data);
            }
          fw_cfg_rebuild_dir (s);
          g_mutex_unlock (&s->lock);
          return;
        }
    }
  if (s->files->len >= FW_CFG_MAX_FILES)
    {
      g_mutex_unlock (&s->lock);
      g_warning ("fw_cfg: too many files, “%s” dropped", name);
      return;
    }

  f = g_new0 (FwCfgFile, 1);
  f->name = g_strdup (name);
  f->data = g_bytes_new (data, len);
  /* Sorting renumbers the selectors: a file selected meanwhile keeps its data. */
  if (s->cur_key >= FW_CFG_FILE_FIRST && s->cur_key != FW_CFG_INVALID
      && !(s->cur_key & FW_CFG_ARCH_LOCAL))
    selected = s->cur;
  g_ptr_array_add (s->files, f);
  g_ptr_array_sort (s->files, fw_cfg_file_cmp);
  if (selected)
    {
      for (guint i = 0; i < s->files->len; i++)
        {
          FwCfgFile *g = g_ptr_array_index (s->files, i);
          if (g->data == selected)
            s->cur_key = FW_CFG_FILE_FIRST + i;
        }
    }
  fw_cfg_rebuild_dir (s);
  g_mutex_unlock (&s->lock);
}

static void
fw_cfg_reset (VrDevice *dev)
{
  VrFwCfg *s = (VrFwCfg *) dev;

  g_mutex_lock (&s->lock);
  fw_cfg_select (s, FW_CFG_INVALID);
  memset (s->dma_addr, 0, sizeof s->dma_addr);
  g_mutex_unlock (&s->lock);
}

/* Snapshot state, version 1: (version, selected key (0xffff: none), read offset in it, the
 * DMA address register as written (8 bytes, big-endian; the high half waits for the low)).
 * The items are the machine's, made again from its configuration: the key must name one. */
#define FW_CFG_STATE_VERSION 1
#define FW_CFG_STATE_TYPE    "(qqu@ay)"

static GVariant *
fw_cfg_save (VrDevice *dev)
{
  VrFwCfg *s = (VrFwCfg *) dev;
  GVariant *v;

  g_mutex_lock (&s->lock);
  v = g_variant_new (FW_CFG_STATE_TYPE, FW_CFG_STATE_VERSION, s->cur_key, s->cur_offset,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, s->dma_addr,
                                                sizeof s->dma_addr, 1));
  g_mutex_unlock (&s->lock);
  return v;
}

static bool
fw_cfg_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrFwCfg *s = (VrFwCfg *) dev;
  g_autoptr (GVariant) dma = NULL;
  const uint8_t *dma_bytes;
  uint16_t version, key;
  uint32_t offset;
  GBytes *item;
  gsize n;
  bool ok = false;

  if (!vr_state_check (state, "fw-cfg", FW_CFG_STATE_TYPE, FW_CFG_STATE_VERSION, error))
    return false;
  g_variant_get (state, FW_CFG_STATE_TYPE, &version, &key, &offset, &dma);
  dma_bytes = g_variant_get_fixed_array (dma, &n, 1);
  if (n != sizeof s->dma_addr)
    return vr_state_fail (error, "fw-cfg", "%" G_GSIZE_FORMAT " bytes of DMA address, "
                          "expected %zu", n, sizeof s->dma_addr);

  g_mutex_lock (&s->lock);
  item = fw_cfg_lookup (s, key);
  if (key != FW_CFG_INVALID && (key & ~(FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK)))
    vr_state_fail (error, "fw-cfg", "selector %#x has the write bit", key);
  else if (key != FW_CFG_INVALID && item == NULL)
    vr_state_fail (error, "fw-cfg", "selected item %#x does not exist on this machine", key);
  else if (offset > (item ? g_bytes_get_size (item) : 0))
    vr_state_fail (error, "fw-cfg", "offset %u past the end of item %#x", offset, key);
  else
    {
      fw_cfg_select (s, key);
      s->cur_offset = offset;
      memcpy (s->dma_addr, dma_bytes, sizeof s->dma_addr);
      ok = true;
    }
  g_mutex_unlock (&s->lock);
  return ok;
}

static void
fw_cfg_destroy (VrDevice *dev)
{
  VrFwCfg *s = (VrFwCfg *) dev;

  vr_bus_unregister (s->pio, VR_FW_CFG_BASE);
  g_clear_pointer (&s->cur, g_bytes_unref);
  g_hash_table_unref (s->items);
  g_ptr_array_unref (s->files);
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps fw_cfg_ops = {
  .name = "fw-cfg",
  .reset = fw_cfg_reset,
  .save = fw_cfg_save,
  .load = fw_cfg_load,
  .destroy = fw_cfg_destroy,
};

VrDevice *
vr_fw_cfg_new (VrBus     *pio,
               VrMemory  *memory,
               GError   **error)
{
  VrFwCfg *s;
  uint32_t id = GUINT32_TO_LE (FW_CFG_VERSION | FW_CFG_VERSION_DMA);

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrFwCfg, 1);
  s->parent.ops = &fw_cfg_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->memory = memory;
  s->items = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_bytes_unref);
  s->files = g_ptr_array_new_with_free_func (fw_cfg_file_free);
  s->cur_key = FW_CFG_INVALID;

  fw_cfg_set_item_locked (s, FW_CFG_SIGNATURE, g_bytes_new_static ("QEMU", 4));
  fw_cfg_set_item_locked (s, FW_CFG_ID, g_bytes_new (&id, sizeof id));
  fw_cfg_rebuild_dir (s);

  if (!vr_bus_register (pio, VR_FW_CFG_BASE, FW_CFG_IO_SIZE, fw_cfg_io, s, "fw-cfg", error))
    {
      g_hash_table_unref (s->items);
      g_ptr_array_unref (s->files);
      g_mutex_clear (&s->lock);
      g_free (s);
      return NULL;
    }
  return &s->parent;
}
