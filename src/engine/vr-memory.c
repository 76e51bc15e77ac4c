/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vr-machine.h"

#define EXTRA_SLOT_BASE 2   /* KVM slots 0 and 1 hold RAM */

typedef struct
{
  bool      used;
  bool      log_dirty;
  bool      readonly;  /* guest writes exit to the MMIO bus (a ROM) */
  bool      in_vm;     /* KVM has it at @gpa */
  void     *host;
  uint64_t  size;
  uint64_t  gpa;       /* VR_MEMORY_UNMAPPED when not mapped */
} ExtraSlot;

struct _VrMemory
{
  int       fd;          /* memfd holding all of guest RAM */
  uint8_t  *host;        /* the whole memfd, mapped shared (or a snapshot's RAM file, private) */
  bool      private_map; /* @host maps a snapshot file copy-on-write, not the memfd */
  GThread  *release;     /* gives the old mapping and the memfd's pages back after a restore,
                          * in the background */
  void     *old_host;    /* the old mapping, moved away, for @release to unmap */
  uint64_t  size;
  uint64_t  low_size;    /* RAM below the MMIO hole: guest [0, low_size) = memfd [0, low_size) */
  uint64_t  high_size;   /* RAM above 4 GiB: guest [4G, 4G + high) = memfd [low, size) */

  GMutex     slot_lock;  /* protects @vm_fd and @extra (a leaf) */
  int        vm_fd;      /* the VM the slots are in, -1 when none */
  ExtraSlot  extra[VR_MEMORY_MAX_EXTRA_SLOTS];
};

/* Waits for the background release of the memfd's pages (see vr_memory_map_private()). */
static void
join_release (VrMemory *mem)
{
  if (mem->release)
    g_thread_join (g_steal_pointer (&mem->release));
}

VrMemory *
vr_memory_new (uint64_t   size,
               GError   **error)
{
  g_autofree VrMemory *mem = NULL;
  int fd;
  void *host;

  if (size < VR_MIN_MEMORY || size > VR_MAX_MEMORY || (size & 0xfff) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Guest memory must be a multiple of 4 KiB between 2 MiB and 1 TiB "
                   "(asked for %" G_GUINT64_FORMAT " bytes)", size);
      return NULL;
    }

  fd = memfd_create ("vireo-guest-ram", MFD_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot create guest memory: %s", g_strerror (errno));
      return NULL;
    }
  if (ftruncate (fd, (off_t) size) < 0)
    {
      int err = errno;
      close (fd);
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot size guest memory to %" G_GUINT64_FORMAT " MiB: %s",
                   size >> 20, g_strerror (err));
      return NULL;
    }
  host = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (host == MAP_FAILED)
    {
      int err = errno;
      close (fd);
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot map %" G_GUINT64_FORMAT " MiB of guest memory: %s",
                   size >> 20, g_strerror (err));
      return NULL;
    }
  madvise (host, size, MADV_DONTDUMP);
  /* Huge pages where the host allows them for shared memory (shmem_enabled=advise): fewer
   * faults and TLB misses for the guest. A no-op where it is "never". */
  madvise (host, size, MADV_HUGEPAGE);

  mem = g_new0 (VrMemory, 1);
  mem->fd = fd;
  mem->host = host;
  mem->size = size;
  mem->low_size = MIN (size, VR_MMIO_HOLE_START);
  mem->high_size = size - mem->low_size;
  g_mutex_init (&mem->slot_lock);
  mem->vm_fd = -1;
  return g_steal_pointer (&mem);
}

void
vr_memory_free (VrMemory *mem)
{
  if (mem == NULL)
    return;
  join_release (mem);
  munmap (mem->host, mem->size);
  close (mem->fd);
  g_mutex_clear (&mem->slot_lock);
  g_free (mem);
}

uint64_t vr_memory_get_size (VrMemory *mem) { return mem->size; }
uint64_t vr_memory_low_size (VrMemory *mem) { return mem->low_size; }
uint64_t vr_memory_high_size (VrMemory *mem) { return mem->high_size; }

void *
vr_memory_translate (VrMemory *mem,
                     uint64_t  gpa,
                     uint64_t  len)
{
  if (gpa < mem->low_size)
    {
      if (len > mem->low_size - gpa)
        return NULL;
      return mem->host + gpa;
    }
  if (gpa >= VR_4GIB && gpa - VR_4GIB < mem->high_size)
    {
      uint64_t off = gpa - VR_4GIB;

      if (len > mem->high_size - off)
        return NULL;
      return mem->host + mem->low_size + off;
    }
  return NULL;
}

bool
vr_memory_read (VrMemory   *mem,
                uint64_t    gpa,
                void       *buf,
                uint64_t    len)
{
  void *p = vr_memory_translate (mem, gpa, len);

  if (p == NULL)
    return false;
  memcpy (buf, p, len);
  return true;
}

bool
vr_memory_write (VrMemory   *mem,
                 uint64_t    gpa,
                 const void *buf,
                 uint64_t    len)
{
  void *p = vr_memory_translate (mem, gpa, len);

  if (p == NULL)
    return false;
  memcpy (p, buf, len);
  return true;
}

/* Maps the memfd over @host again (after a snapshot file was mapped there). */
static void
map_memfd (VrMemory *mem)
{
  join_release (mem);
  if (!mem->private_map)
    return;
  if (mmap (mem->host, mem->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED,
            mem->fd, 0) == MAP_FAILED)
    g_error ("Cannot map guest memory back: %s", g_strerror (errno));
  madvise (mem->host, mem->size, MADV_DONTDUMP);
  madvise (mem->host, mem->size, MADV_HUGEPAGE);
  mem->private_map = false;
}

void
vr_memory_discard (VrMemory *mem)
{
  map_memfd (mem);
  /* Gives the pages back to the host; they read as zero afterwards. */
  if (fallocate (mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) mem->size) < 0)
    memset (mem->host, 0, mem->size);
}

/* With @slot_lock held: tells KVM about slot @id at its address (or removes it). */
static bool
extra_slot_apply (VrMemory  *mem,
                  int        id,
                  GError   **error)
{
  ExtraSlot *s = &mem->extra[id];
  struct kvm_userspace_memory_region r = {
    .slot = EXTRA_SLOT_BASE + (uint32_t) id,
  };

  if (mem->vm_fd < 0)
    return true;
  if (s->in_vm)
    {
      /* Deleting first: KVM moves a slot only when its flags stay, and this is simplest. */
      if (ioctl (mem->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        g_warning ("KVM cannot remove memory slot %u: %s", r.slot, g_strerror (errno));
      s->in_vm = false;
    }
  if (!s->used || s->gpa == VR_MEMORY_UNMAPPED)
    return true;
  r.flags = (s->log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0)
            | (s->readonly ? KVM_MEM_READONLY : 0);
  r.guest_phys_addr = s->gpa;
  r.memory_size = s->size;
  r.userspace_addr = (uintptr_t) s->host;
  if (ioctl (mem->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "KVM refused device memory at %#" G_GINT64_MODIFIER "x (%" G_GUINT64_FORMAT
                   " KiB): %s", s->gpa, s->size >> 10, g_strerror (errno));
      return false;
    }
  s->in_vm = true;
  return true;
}

int
vr_memory_add_slot (VrMemory          *mem,
                    void              *host,
                    uint64_t           size,
                    VrMemorySlotFlags  flags)
{
  int id = -1;

  g_return_val_if_fail (mem != NULL, -1);
  g_return_val_if_fail (host != NULL && ((uintptr_t) host & 0xfff) == 0, -1);
  g_return_val_if_fail (size > 0 && (size & 0xfff) == 0, -1);

  g_mutex_lock (&mem->slot_lock);
  for (int i = 0; i < VR_MEMORY_MAX_EXTRA_SLOTS; i++)
    if (!mem->extra[i].used)
      {
        mem->extra[i] = (ExtraSlot) {
          .used = true, .log_dirty = (flags & VR_MEMORY_SLOT_LOG_DIRTY) != 0,
          .readonly = (flags & VR_MEMORY_SLOT_READONLY) != 0, .host = host, .size = size,
          .gpa = VR_MEMORY_UNMAPPED,
        };
        id = i;
        break;
      }
  g_mutex_unlock (&mem->slot_lock);
  return id;
}

void
vr_memory_remove_slot (VrMemory *mem,
                       int       id)
{
  g_return_if_fail (mem != NULL);
  g_return_if_fail (id >= 0 && id < VR_MEMORY_MAX_EXTRA_SLOTS);

  g_mutex_lock (&mem->slot_lock);
  mem->extra[id].used = false;
  extra_slot_apply (mem, id, NULL);
  mem->extra[id] = (ExtraSlot) { .gpa = VR_MEMORY_UNMAPPED };
  g_mutex_unlock (&mem->slot_lock);
}

bool
vr_memory_set_slot_address (VrMemory  *mem,
                            int        id,
                            uint64_t   gpa,
                            GError   **error)
{
  bool ok;

  g_return_val_if_fail (mem != NULL, false);
  g_return_val_if_fail (id >= 0 && id < VR_MEMORY_MAX_EXTRA_SLOTS, false);
  g_return_val_if_fail (gpa == VR_MEMORY_UNMAPPED || (gpa & 0xfff) == 0, false);

  g_mutex_lock (&mem->slot_lock);
  if (!mem->extra[id].used)
    ok = true;
  else if (mem->extra[id].gpa == gpa && (mem->extra[id].in_vm || mem->vm_fd < 0))
    ok = true;
  else
    {
      mem->extra[id].gpa = gpa;
      ok = extra_slot_apply (mem, id, error);
    }
  g_mutex_unlock (&mem->slot_lock);
  return ok;
}

bool
vr_memory_get_dirty_log (VrMemory *mem,
                         int       id,
                         uint64_t *bitmap)
{
  struct kvm_dirty_log log = { .slot = EXTRA_SLOT_BASE + (uint32_t) id };
  bool ok = false;

  g_return_val_if_fail (mem != NULL, false);
  g_return_val_if_fail (id >= 0 && id < VR_MEMORY_MAX_EXTRA_SLOTS, false);

  g_mutex_lock (&mem->slot_lock);
  if (mem->vm_fd >= 0 && mem->extra[id].used && mem->extra[id].in_vm && mem->extra[id].log_dirty)
    {
      log.dirty_bitmap = bitmap;
      ok = ioctl (mem->vm_fd, KVM_GET_DIRTY_LOG, &log) == 0;
    }
  g_mutex_unlock (&mem->slot_lock);
  return ok;
}

void
vr_memory_detach_vm (VrMemory *mem)
{
  g_return_if_fail (mem != NULL);

  g_mutex_lock (&mem->slot_lock);
  mem->vm_fd = -1;
  for (int i = 0; i < VR_MEMORY_MAX_EXTRA_SLOTS; i++)
    mem->extra[i].in_vm = false;
  g_mutex_unlock (&mem->slot_lock);
}

bool
vr_memory_map_into_vm (VrMemory  *mem,
                       int        vm_fd,
                       GError   **error)
{
  struct kvm_userspace_memory_region regions[2] = {
    { .slot = 0, .guest_phys_addr = 0, .memory_size = mem->low_size,
      .userspace_addr = (uintptr_t) mem->host },
    { .slot = 1, .guest_phys_addr = VR_4GIB, .memory_size = mem->high_size,
      .userspace_addr = (uintptr_t) (mem->host + mem->low_size) },
  };

  for (unsigned i = 0; i < G_N_ELEMENTS (regions); i++)
    {
      if (regions[i].memory_size == 0)
        continue;
      if (ioctl (vm_fd, KVM_SET_USER_MEMORY_REGION, &regions[i]) < 0)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                       "KVM refused guest memory slot %u: %s", i, g_strerror (errno));
          return false;
        }
    }

  /* The device memory that was mapped in the previous VM (a refusal was reported when the
   * address was set; the device keeps working through exits). */
  g_mutex_lock (&mem->slot_lock);
  mem->vm_fd = vm_fd;
  for (int i = 0; i < VR_MEMORY_MAX_EXTRA_SLOTS; i++)
    {
      g_autoptr (GError) local_error = NULL;

      mem->extra[i].in_vm = false;
      if (!extra_slot_apply (mem, i, &local_error))
        g_message ("%s", local_error->message);
    }
  g_mutex_unlock (&mem->slot_lock);
  return true;
}

unsigned
vr_memory_e820 (VrMemory    *mem,
                VrE820Entry *entries,
                unsigned     max)
{
  VrE820Entry map[5];
  unsigned n = 0;

  /* Conventional memory, then the EBDA, the VGA hole and the BIOS area (ACPI tables live in
   * 0xe0000-0xfffff), then extended memory up to the MMIO hole, then RAM above 4 GiB. */
  map[n++] = (VrE820Entry) { 0, 0x9fc00, VR_E820_RAM };
  map[n++] = (VrE820Entry) { 0x9fc00, 0x400, VR_E820_RESERVED };
  map[n++] = (VrE820Entry) { 0xe0000, 0x20000, VR_E820_RESERVED };
  if (mem->low_size > 0x100000)
    map[n++] = (VrE820Entry) { 0x100000, mem->low_size - 0x100000, VR_E820_RAM };
  if (mem->high_size > 0)
    map[n++] = (VrE820Entry) { VR_4GIB, mem->high_size, VR_E820_RAM };

  n = MIN (n, max);
  memcpy (entries, map, n * sizeof (VrE820Entry));
  return n;
}

/* ---- snapshots ---------------------------------------------------------------------------- */

#define PAGE 4096u
#define WRITE_CHUNK (8u << 20)

static bool
page_is_zero (const uint8_t *p)
{
  const uint64_t *w = (const uint64_t *) p;
  uint64_t acc = 0;

  for (unsigned i = 0; i < PAGE / 8; i += 8)
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
  return acc == 0;
}

static bool
write_all (int            fd,
           const uint8_t *buf,
           uint64_t       len,
           uint64_t       offset,
           GError       **error)
{
  while (len > 0)
    {
      ssize_t n = pwrite (fd, buf, MIN (len, (uint64_t) WRITE_CHUNK), (off_t) offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int err = n < 0 ? errno : ENOSPC;

          g_set_error (error, VR_ERROR, VR_ERROR_IO,
                       "Cannot write guest memory to the snapshot: %s", g_strerror (err));
          return false;
        }
      /* Start writing it to the disk now, while the next part is copied: the final fsync
       * then waits for the tail only, not for a GiB of dirty pages. */
      sync_file_range (fd, (off_t) offset, n, SYNC_FILE_RANGE_WRITE);
      buf += n;
      len -= (uint64_t) n;
      offset += (uint64_t) n;
    }
  return true;
}

/* Writes the non-zero pages of host [start, end) (offsets into RAM) to @fd. */
static bool
save_range (VrMemory  *mem,
            int        fd,
            uint64_t   file_offset,
            uint64_t   start,
            uint64_t   end,
            GError   **error)
{
  uint64_t run = start, pos = start;

  /* [run, pos) is a run of non-zero pages not yet written. */
  for (; pos < end; pos += PAGE)
    {
      if (!page_is_zero (mem->host + pos))
        {
          if (pos - run >= WRITE_CHUNK)
            {
              if (!write_all (fd, mem->host + run, pos - run, file_offset + run, error))
                return false;
              run = pos;
            }
          continue;
        }
      if (pos > run && !write_all (fd, mem->host + run, pos - run, file_offset + run, error))
        return false;
      run = pos + PAGE;
    }
  if (pos > run && !write_all (fd, mem->host + run, pos - run, file_offset + run, error))
    return false;
  return true;
}

bool
vr_memory_save (VrMemory  *mem,
                int        fd,
                uint64_t   offset,
                GError   **error)
{
  g_return_val_if_fail ((offset & (PAGE - 1)) == 0, false);

  if (ftruncate (fd, (off_t) (offset + mem->size)) < 0)
    {
      int err = errno;

      g_set_error (error, VR_ERROR, VR_ERROR_IO,
                   "Cannot size the snapshot's memory file: %s", g_strerror (err));
      return false;
    }

  if (mem->private_map)
    return save_range (mem, fd, offset, 0, mem->size, error);

  /* The memfd knows which pages were never touched: skip its holes without reading them. */
  for (off_t pos = 0; (uint64_t) pos < mem->size;)
    {
      off_t data = lseek (mem->fd, pos, SEEK_DATA), hole;

      if (data < 0)
        {
          if (errno == ENXIO)
            break;
          return save_range (mem, fd, offset, (uint64_t) pos, mem->size, error);
        }
      hole = lseek (mem->fd, data, SEEK_HOLE);
      if (hole < 0 || (uint64_t) hole > mem->size)
        hole = (off_t) mem->size;
      if (!save_range (mem, fd, offset, (uint64_t) data & ~(uint64_t) (PAGE - 1),
                       (uint64_t) hole, error))
        return false;
      pos = hole;
    }
  return true;
}

static gpointer
release_memfd (gpointer data)
{
  VrMemory *mem = data;

  if (mem->old_host)
    munmap (g_steal_pointer (&mem->old_host), mem->size);
  if (fallocate (mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t) mem->size) < 0)
    g_debug ("cannot release the old guest memory: %s", g_strerror (errno));
  return NULL;
}

bool
vr_memory_map_private (VrMemory  *mem,
                       int        fd,
                       uint64_t   offset,
                       bool       prefault,
                       GError   **error)
{
  struct stat st;

  join_release (mem);
  if (fstat (fd, &st) < 0 || (uint64_t) st.st_size < offset + mem->size)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot's memory file is shorter than the guest's memory");
      return false;
    }
  /* Unmapping a populated GiB takes tens of milliseconds. Instead its page tables move
   * whole to a spare range (MREMAP_DONTUNMAP leaves the mapping at @host in place, empty, so
   * no other thread can map anything into a hole there), which the background thread then
   * unmaps. Kernels before 5.13 refuse DONTUNMAP for shared mappings: then the replacing
   * mmap() below unmaps the old pages itself. */
  {
    void *away = mmap (NULL, mem->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);

    if (away != MAP_FAILED
        && mremap (mem->host, mem->size, mem->size,
                   MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, away) == away)
      mem->old_host = away;
    else if (away != MAP_FAILED)
      munmap (away, mem->size);
  }
  if (mmap (mem->host, mem->size, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, (off_t) offset) == MAP_FAILED)
    {
      int err = errno;

      /* The old contents may be gone (moved away): put the memfd back so RAM stays usable
       * (the machine is stopped after a failed restore anyway). */
      if (mem->old_host)
        munmap (g_steal_pointer (&mem->old_host), mem->size);
      mem->private_map = true;
      map_memfd (mem);
      g_set_error (error, VR_ERROR, VR_ERROR_IO,
                   "Cannot map the snapshot's memory: %s", g_strerror (err));
      return false;
    }
  mem->private_map = true;
  madvise (mem->host, mem->size, MADV_DONTDUMP);
  if (prefault)
    madvise (mem->host, mem->size, MADV_WILLNEED);
  /* The memfd's old contents are not needed any more; freeing a GiB of pages takes tens of
   * milliseconds, which the guest need not wait for. Joined before the memfd is used again. */
  mem->release = g_thread_new ("vireo-ram-release", release_memfd, mem);
  return true;
}

uint64_t
vr_memory_get_used (VrMemory *mem)
{
  struct stat st;
  g_autofree unsigned char *vec = NULL;
  uint64_t pages = mem->size / PAGE, used = 0;

  if (!mem->private_map)
    return fstat (mem->fd, &st) < 0 ? 0 : (uint64_t) st.st_blocks * 512;
  /* Copied pages and those read from the file, as the host holds them. */
  vec = g_malloc (pages);
  if (mincore (mem->host, mem->size, vec) < 0)
    return 0;
  for (uint64_t i = 0; i < pages; i++)
    used += vec[i] & 1;
  return used * PAGE;
}
