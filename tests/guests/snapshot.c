/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * snapshot: a guest whose every observable value follows from where it is, so that a
 * snapshot taken anywhere and restored shows up as a byte-identical continuation of the
 * serial output.
 *
 * Each step n rewrites one 4 KiB page of a RAM region (ram=MiB, default 1, at 32 MiB) with
 * a pattern of n and keeps a running checksum of the whole region; every 128 steps the
 * region is summed again and must match. Every 16 steps it prints "count=n sum=S rec=R".
 * With a virtio-blk disk (disk), every 32 steps it appends record R (sector R: n and the
 * checksum) after checking the sector is still zero, and re-reads record R-1: a disk not
 * reverted with the RAM shows as a record already there. APs (cpus>1) each keep their own
 * region and checksum the same way and report corruption through a flag. The PIT ticks at
 * 100 Hz through the IOAPIC the whole time (interrupts in flight at any snapshot).
 *
 * snap=N: at step N ask the VMM for a snapshot (VR_SNAPSHOT_PORT: write 1, wait for the
 * generation byte to move). end=N: stop after step N, print the final line, power off
 * through the debug-exit port with 0 (status 1).
 */

#include "guest.h"
#include "virtio.h"

#define SNAPSHOT_PORT  0x6f0
#define REGION_BASE    0x2000000u    /* 32 MiB */
#define AP_REGION_SIZE 0x40000u      /* 256 KiB each, after the BSP's */
#define PAGE           4096u
#define PIT_VECTOR     0x30
#define HZ             100
#define SECTOR         512

#define VIRTIO_BLK_T_IN  0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_S_OK  0

typedef struct
{
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
} BlkHeader;

static volatile uint64_t ticks;
static volatile uint32_t ap_failed;
static volatile uint32_t ap_running;
static uint32_t region_pages;

static VirtioDevice dev;
static VirtQueue *vq;
static BlkHeader *hdr;
static uint8_t *status;
static uint8_t *sector_buf;
static bool have_disk;

static void
on_pit (IntFrame *f)
{
  ticks++;
}

static uint32_t
page_sum (const uint32_t *p)
{
  uint32_t s = 0;

  for (unsigned i = 0; i < PAGE / 4; i++)
    s += p[i] ^ (i * 0x9e3779b9u);
  return s;
}

static void
fill_page (uint32_t *p, uint64_t n)
{
  uint32_t x = (uint32_t) (n * 2654435761u) ^ 0xa5a5a5a5u;

  for (unsigned i = 0; i < PAGE / 4; i++)
    {
      /* xorshift32: every page's sum differs from the next one's. */
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      p[i] = x;
    }
}

static uint32_t
region_sum (uint32_t *base, uint32_t pages)
{
  uint32_t s = 0;

  for (uint32_t i = 0; i < pages; i++)
    s += page_sum (base + i * (PAGE / 4));
  return s;
}

/* One step on a region: rewrite page n % pages, keep the running sum. */
static uint32_t
step (uint32_t *base, uint32_t pages, uint64_t n, uint32_t sum)
{
  uint32_t *p = base + (n % pages) * (PAGE / 4);

  sum -= page_sum (p);
  fill_page (p, n);
  return sum + page_sum (p);
}

static void
ap_main (int cpu)
{
  uint32_t *base = phys (REGION_BASE + region_pages * PAGE + (uint32_t) (cpu - 1) * AP_REGION_SIZE);
  uint32_t pages = AP_REGION_SIZE / PAGE, sum;
  uint64_t n = 0;

  for (uint32_t i = 0; i < pages; i++)
    fill_page (base + i * (PAGE / 4), i);
  sum = region_sum (base, pages);
  __atomic_add_fetch (&ap_running, 1, __ATOMIC_SEQ_CST);
  for (;;)
    {
      sum = step (base, pages, n, sum);
      if (++n % 128 == 0 && region_sum (base, pages) != sum)
        ap_failed = (uint32_t) cpu;
    }
}

static uint8_t
blk_io (uint32_t type, uint64_t sector)
{
  VirtioBuf bufs[3] = {
    { hdr, sizeof *hdr, false },
    { sector_buf, SECTOR, type == VIRTIO_BLK_T_IN },
    { status, 1, true },
  };

  hdr->type = type;
  hdr->reserved = 0;
  hdr->sector = sector;
  *status = 0xff;
  if (virtq_add (vq, bufs, type == VIRTIO_BLK_T_IN ? 1 : 2, type == VIRTIO_BLK_T_IN ? 2 : 1,
                 hdr, false) < 0)
    guest_fail ("virtqueue full");
  virtq_kick (vq);
  if (virtq_wait_used (vq, NULL, 60000) != hdr)
    guest_fail ("disk request type %u sector %lu timed out", type, (unsigned long) sector);
  return *status;
}

static void
append_record (uint32_t rec, uint64_t n, uint32_t sum)
{
  uint64_t *w = (uint64_t *) sector_buf;

  if (blk_io (VIRTIO_BLK_T_IN, rec) != VIRTIO_BLK_S_OK)
    guest_fail ("reading sector %u failed", rec);
  for (unsigned i = 0; i < SECTOR / 8; i++)
    if (w[i] != 0)
      guest_fail ("record %u is already on the disk (count %lu): the disk was not reverted",
                  rec, (unsigned long) w[1]);
  w[0] = 0x5245434f5244ull;   /* "RECORD" */
  w[1] = n;
  w[2] = sum;
  w[3] = rec;
  if (blk_io (VIRTIO_BLK_T_OUT, rec) != VIRTIO_BLK_S_OK)
    guest_fail ("writing record %u failed", rec);
  if (rec > 0)
    {
      if (blk_io (VIRTIO_BLK_T_IN, rec - 1) != VIRTIO_BLK_S_OK)
        guest_fail ("reading record %u failed", rec - 1);
      if (w[0] != 0x5245434f5244ull || w[3] != rec - 1)
        guest_fail ("record %u is missing or damaged", rec - 1);
    }
}

static void
setup_disk (void)
{
  if (!virtio_find (VIRTIO_ID_BLOCK, 0, &dev))
    guest_fail ("no virtio-blk device");
  if (!virtio_init (&dev, virtio_irq_mode_from_cmdline (VIRTIO_IRQ_MSIX))
      || !virtio_negotiate (&dev, 0))
    guest_fail ("virtio-blk: initialisation failed");
  vq = virtio_queue_setup (&dev, 0, 64);
  if (!vq)
    guest_fail ("virtio-blk: queue setup failed");
  hdr = virtio_alloc (sizeof *hdr, 16);
  status = virtio_alloc (1, 1);
  sector_buf = virtio_alloc (SECTOR, SECTOR);
  virtio_driver_ok (&dev);
  have_disk = true;
}

int
guest_main (void)
{
  unsigned long ram_mib = 1, snap = 0, end = 0;
  uint32_t *base = phys (REGION_BASE);
  uint32_t sum, rec = 0;
  MadtInfo madt;
  uint8_t ids[MAX_CPUS];
  int ncpus = 1;

  cmdline_uint ("ram", &ram_mib);
  cmdline_uint ("snap", &snap);
  cmdline_uint ("end", &end);
  if (ram_mib < 1 || ram_mib > 64)
    guest_fail ("ram=%lu: 1 to 64 MiB", ram_mib);
  region_pages = (uint32_t) (ram_mib << 20) / PAGE;

  printf ("snapshot test\n");
  if (!acpi_parse_madt (&madt) || !madt.ioapic_addr)
    guest_fail ("no valid MADT with an IOAPIC");
  pic_disable ();
  lapic_enable ();
  if (cmdline_has ("disk"))
    setup_disk ();
  if (madt.ncpus > 1)
    {
      ncpus = smp_start_aps (&madt, ap_main, ids);
      /* Up to a minute: on an emulating host an AP takes a while to fill its region. */
      for (int ms = 0; ap_running < (uint32_t) (ncpus - 1) && ms < 60000; ms++)
        pit_delay_ms (1);
      if (ap_running != (uint32_t) (ncpus - 1))
        guest_fail ("only %u of %d APs are running", ap_running, ncpus - 1);
    }
  set_int_handler (PIT_VECTOR, on_pit);
  pit_periodic (HZ);
  ioapic_route (madt.ioapic_addr, madt.isa_gsi[0] - madt.ioapic_gsi_base, PIT_VECTOR,
                madt.isa_flags[0], (uint8_t) lapic_id (), false);

  for (uint32_t i = 0; i < region_pages; i++)
    fill_page (base + i * (PAGE / 4), i);
  sum = region_sum (base, region_pages);
  irq_enable ();
  printf ("ready: %d cpus, %lu MiB, disk %s\n", ncpus, ram_mib, have_disk ? "yes" : "no");

  for (uint64_t n = 1;; n++)
    {
      sum = step (base, region_pages, n, sum);
      if (n % 128 == 0 && region_sum (base, region_pages) != sum)
        guest_fail ("count=%lu: the RAM checksum does not match", (unsigned long) n);
      if (ap_failed)
        guest_fail ("cpu %u: its RAM checksum does not match", ap_failed);
      if (have_disk && n % 32 == 0)
        append_record (rec++, n, sum);
      if (n % 16 == 0)
        printf ("count=%lu sum=%08x rec=%u\n", (unsigned long) n, sum, rec);
      if (snap && n == snap)
        {
          uint8_t gen = inb (SNAPSHOT_PORT);

          printf ("snapshot: asking at count=%lu\n", (unsigned long) n);
          outb (SNAPSHOT_PORT, 1);
          while (inb (SNAPSHOT_PORT) == gen)
            cpu_relax ();
          printf ("snapshot: continuing\n");
        }
      if (end && n == end)
        {
          printf ("done: count=%lu sum=%08x rec=%u ticks %s\n", (unsigned long) n, sum, rec,
                  ticks > 0 ? "yes" : "no");
          if (ticks == 0)
            guest_fail ("no timer interrupt arrived");
          guest_pass ();
        }
    }
}
