/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * blk: a virtio-blk driver's view of the disk (virtio 1.x, 5.2).
 *
 * The host (tests/guests/test-virtio.c) gives a disk of at least 2048 sectors filled with
 * pattern A; the guest reads and writes it and the host then checks the file:
 *
 *   pattern A (host-written), sector s, byte i:  i < 4 ? byte i of le32 (s)
 *                                                      : (uint8_t) (s * 31 + i)
 *   pattern B (guest-written):                    i < 4 ? byte i of le32 (~s)
 *                                                      : (uint8_t) (s * 17 + i * 3 + 0x5a)
 *
 * Read-write disk:
 *  - sectors 0..63: eight 8-sector reads in flight at once (data in 4 segments, one of
 *    them split 100/924/1024/2048 bytes; every other request through an indirect table);
 *    the last sector; reads at and across the end of the disk must fail with IOERR;
 *  - sectors 512..575: written with pattern B the same way, FLUSH, read back;
 *  - sectors 1024..1039: WRITE_ZEROES when offered (then they read as zeroes);
 *  - sectors 1536..1663: DISCARD when offered (afterwards each sector holds zeroes or
 *    pattern A: the spec leaves it open);
 *  - everything else keeps pattern A.
 * Read-only disk ("ro" on the command line): VIRTIO_BLK_F_RO must be offered; the reads
 * as above; a write must fail with IOERR and change nothing.
 *
 * Command line: irq=msix|intx|poll (default msix), ro.
 *
 * Throughput mode (bench/io), "mode=bench": no checks, just requests as fast as this guest
 * can issue them, on a disk of at least 256 MiB: sequential 1 MiB reads and writes and random
 * 4 KiB reads and writes, each at queue depth 1 and 16. Each run prints
 * "bench: NAME start" and "bench: NAME done N requests B bytes"; the host times the lines
 * and samples the VMM's CPU time between them. "bench_mb=N" (default 64) sets the bytes of
 * each sequential run, "bench_ios=N" (default 1000) the requests of each random one.
 */

#include "guest.h"
#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX      1
#define VIRTIO_BLK_F_SEG_MAX       2
#define VIRTIO_BLK_F_RO            5
#define VIRTIO_BLK_F_BLK_SIZE      6
#define VIRTIO_BLK_F_FLUSH         9
#define VIRTIO_BLK_F_DISCARD       13
#define VIRTIO_BLK_F_WRITE_ZEROES  14

#define VIRTIO_BLK_T_IN            0
#define VIRTIO_BLK_T_OUT           1
#define VIRTIO_BLK_T_FLUSH         4
#define VIRTIO_BLK_T_GET_ID        8
#define VIRTIO_BLK_T_DISCARD       11
#define VIRTIO_BLK_T_WRITE_ZEROES  13

#define VIRTIO_BLK_S_OK            0
#define VIRTIO_BLK_S_IOERR         1
#define VIRTIO_BLK_S_UNSUPP        2
#define STATUS_UNSET               0xee

/* struct virtio_blk_config offsets */
#define CFG_CAPACITY               0x00
#define CFG_SIZE_MAX               0x08
#define CFG_SEG_MAX                0x0c
#define CFG_BLK_SIZE               0x14
#define CFG_MAX_DISCARD_SECTORS    0x24
#define CFG_MAX_DISCARD_SEG        0x28
#define CFG_DISCARD_ALIGNMENT      0x2c
#define CFG_MAX_WZ_SECTORS         0x30
#define CFG_MAX_WZ_SEG             0x34

#define SECTOR        512
#define REQ_SECTORS   8
#define NREQ          8
#define READ_START    0
#define WRITE_START   512
#define WZ_START      1024
#define WZ_COUNT      16
#define DISCARD_START 1536
#define DISCARD_COUNT 128
#define MIN_CAPACITY  2048
#define TIMEOUT_MS    20000

typedef struct
{
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
} BlkHeader;

typedef struct
{
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
} BlkRange;

typedef struct
{
  BlkHeader header;
  BlkRange  range;
  uint8_t   status;
  uint8_t  *data;
  uint32_t  len;
} Request;

static VirtioDevice dev;
static VirtQueue *vq;
static Request *reqs;
static uint8_t *buffer;                 /* NREQ * REQ_SECTORS sectors */
static unsigned max_data_segs = 4;

static uint8_t
pattern_a (uint64_t s, unsigned i)
{
  return i < 4 ? (uint8_t) ((uint32_t) s >> (8 * i)) : (uint8_t) (s * 31 + i);
}

static uint8_t
pattern_b (uint64_t s, unsigned i)
{
  return i < 4 ? (uint8_t) (~(uint32_t) s >> (8 * i)) : (uint8_t) (s * 17 + i * 3 + 0x5a);
}

/* The first sector in [first, first + count) whose bytes differ, or -1. */
static long
check_sectors (const uint8_t *p, uint64_t first, unsigned count,
               uint8_t (*pat) (uint64_t, unsigned))
{
  for (unsigned k = 0; k < count; k++)
    for (unsigned i = 0; i < SECTOR; i++)
      if (p[k * SECTOR + i] != (pat ? pat (first + k, i) : 0))
        {
          printf ("info: sector %lu byte %u is 0x%02x\n", (unsigned long) (first + k), i,
                  p[k * SECTOR + i]);
          return (long) (first + k);
        }
  return -1;
}

/*
 * Queues request @r (not kicked): header, then the data in up to max_data_segs segments
 * (the last request of a batch uses uneven ones), then the status byte.
 */
static void
queue_request (Request *r, uint32_t type, uint64_t sector, uint8_t *data, uint32_t len,
               bool indirect, bool uneven)
{
  VirtioBuf bufs[8];
  unsigned n = 0, n_out;
  bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

  r->header.type = type;
  r->header.reserved = 0;
  r->header.sector = sector;
  r->status = STATUS_UNSET;
  r->data = data;
  r->len = len;
  bufs[n++] = (VirtioBuf) { &r->header, sizeof r->header, false };
  if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES)
    bufs[n++] = (VirtioBuf) { &r->range, sizeof r->range, false };
  else if (len)
    {
      static const uint32_t split[] = { 100, 924, 1024, 2048 };

      if (uneven && len == 4096 && max_data_segs >= 4)
        for (unsigned i = 0, off = 0; i < 4; off += split[i], i++)
          bufs[n++] = (VirtioBuf) { data + off, split[i], device_writes };
      else
        {
          unsigned segs = len % 1024 == 0 && len / 1024 <= max_data_segs ? len / 1024 : 1;

          for (unsigned i = 0; i < segs; i++)
            bufs[n++] = (VirtioBuf) { data + i * (len / segs), len / segs, device_writes };
        }
    }
  n_out = device_writes ? 1 : n;
  bufs[n++] = (VirtioBuf) { &r->status, 1, true };
  if (virtq_add (vq, bufs, n_out, n - n_out, r, indirect) < 0)
    guest_fail ("virtqueue full");
}

/* Waits for @n requests to complete; returns how many had status @want. */
static unsigned
wait_requests (unsigned n, uint8_t want)
{
  unsigned ok = 0;

  for (unsigned i = 0; i < n; i++)
    {
      uint32_t len;
      Request *r = virtq_wait_used (vq, &len, TIMEOUT_MS);

      if (!r)
        guest_fail ("timeout: %u of %u requests completed", i, n);
      if (r->status == STATUS_UNSET)
        guest_fail ("request type %u sector %lu completed without a status", r->header.type,
                    (unsigned long) r->header.sector);
      if (r->status == want)
        ok++;
      else
        printf ("info: request type %u sector %lu: status %u\n", r->header.type,
                (unsigned long) r->header.sector, r->status);
    }
  return ok;
}

/* One request, synchronously; returns its status. */
static uint8_t
do_request (uint32_t type, uint64_t sector, uint8_t *data, uint32_t len)
{
  Request *r = &reqs[0];

  queue_request (r, type, sector, data, len, false, false);
  virtq_kick (vq);
  if (virtq_wait_used (vq, NULL, TIMEOUT_MS) != r)
    guest_fail ("timeout: request type %u sector %lu", type, (unsigned long) sector);
  return r->status;
}

/* NREQ requests of REQ_SECTORS sectors from @first, all in flight at once. */
static void
batch (uint32_t type, uint64_t first)
{
  unsigned ok;

  for (unsigned i = 0; i < NREQ; i++)
    queue_request (&reqs[i], type, first + i * REQ_SECTORS, buffer + i * REQ_SECTORS * SECTOR,
                   REQ_SECTORS * SECTOR, i % 2 == 1, i == NREQ - 1);
  virtq_kick (vq);
  ok = wait_requests (NREQ, VIRTIO_BLK_S_OK);
  if (ok != NREQ)
    guest_fail ("%u of %u %s requests failed", NREQ - ok, NREQ,
                type == VIRTIO_BLK_T_IN ? "read" : "write");
}

static const char *
status_name (uint8_t s)
{
  switch (s)
    {
    case VIRTIO_BLK_S_OK: return "ok";
    case VIRTIO_BLK_S_IOERR: return "ioerr";
    case VIRTIO_BLK_S_UNSUPP: return "unsupp";
    default: return "bad status";
    }
}

static void
read_tests (uint64_t capacity)
{
  uint8_t st;
  long bad;

  memset (buffer, 0xcc, NREQ * REQ_SECTORS * SECTOR);
  batch (VIRTIO_BLK_T_IN, READ_START);
  if ((bad = check_sectors (buffer, READ_START, NREQ * REQ_SECTORS, pattern_a)) >= 0)
    guest_fail ("sector %ld does not hold pattern A", bad);
  printf ("read: %u sectors in %u requests: ok\n", NREQ * REQ_SECTORS, NREQ);

  st = do_request (VIRTIO_BLK_T_IN, capacity - 1, buffer, SECTOR);
  if (st != VIRTIO_BLK_S_OK || check_sectors (buffer, capacity - 1, 1, pattern_a) >= 0)
    guest_fail ("last sector: status %u", st);
  printf ("read: last sector: ok\n");

  st = do_request (VIRTIO_BLK_T_IN, capacity, buffer, SECTOR);
  printf ("read at the end: %s\n", status_name (st));
  if (st != VIRTIO_BLK_S_IOERR)
    guest_fail ("a read past the end must fail with IOERR");
  st = do_request (VIRTIO_BLK_T_IN, capacity - 1, buffer, 2 * SECTOR);
  printf ("read across the end: %s\n", status_name (st));
  if (st != VIRTIO_BLK_S_IOERR)
    guest_fail ("a read across the end must fail with IOERR");
}

static void
fill (uint64_t first, unsigned count, uint8_t (*pat) (uint64_t, unsigned))
{
  for (unsigned k = 0; k < count; k++)
    for (unsigned i = 0; i < SECTOR; i++)
      buffer[k * SECTOR + i] = pat (first + k, i);
}

static void
write_tests (void)
{
  long bad;
  uint8_t st;

  fill (WRITE_START, NREQ * REQ_SECTORS, pattern_b);
  batch (VIRTIO_BLK_T_OUT, WRITE_START);
  printf ("write: %u sectors in %u requests: ok\n", NREQ * REQ_SECTORS, NREQ);

  if (virtio_has_feature (&dev, VIRTIO_BLK_F_FLUSH))
    {
      st = do_request (VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
      printf ("flush: %s\n", status_name (st));
      if (st != VIRTIO_BLK_S_OK)
        guest_fail ("flush failed");
    }
  else
    printf ("flush: not offered\n");

  memset (buffer, 0, NREQ * REQ_SECTORS * SECTOR);
  batch (VIRTIO_BLK_T_IN, WRITE_START);
  if ((bad = check_sectors (buffer, WRITE_START, NREQ * REQ_SECTORS, pattern_b)) >= 0)
    guest_fail ("sector %ld does not read back pattern B", bad);
  printf ("write: read back: ok\n");

  /* The optional commands report in info lines: a device need not offer them. */
  if (virtio_has_feature (&dev, VIRTIO_BLK_F_WRITE_ZEROES))
    {
      uint32_t max = virtio_config_read32 (&dev, CFG_MAX_WZ_SECTORS);
      Request *r = &reqs[0];

      printf ("info: write zeroes: max %u sectors, %u segments\n", max,
              virtio_config_read32 (&dev, CFG_MAX_WZ_SEG));
      r->range = (BlkRange) { WZ_START, WZ_COUNT, 0 };
      st = do_request (VIRTIO_BLK_T_WRITE_ZEROES, 0, NULL, 0);
      if (st != VIRTIO_BLK_S_OK)
        guest_fail ("write zeroes: status %u", st);
      memset (buffer, 0xcc, WZ_COUNT * SECTOR);
      if (do_request (VIRTIO_BLK_T_IN, WZ_START, buffer, WZ_COUNT * SECTOR) != VIRTIO_BLK_S_OK)
        guest_fail ("read after write zeroes failed");
      if ((bad = check_sectors (buffer, WZ_START, WZ_COUNT, NULL)) >= 0)
        guest_fail ("sector %ld is not zero after WRITE_ZEROES", bad);
      printf ("info: write zeroes: done\n");
    }
  else
    printf ("info: write zeroes: not offered\n");

  if (virtio_has_feature (&dev, VIRTIO_BLK_F_DISCARD))
    {
      Request *r = &reqs[0];

      printf ("info: discard: max %u sectors, %u segments, alignment %u\n",
              virtio_config_read32 (&dev, CFG_MAX_DISCARD_SECTORS),
              virtio_config_read32 (&dev, CFG_MAX_DISCARD_SEG),
              virtio_config_read32 (&dev, CFG_DISCARD_ALIGNMENT));
      r->range = (BlkRange) { DISCARD_START, DISCARD_COUNT, 0 };
      st = do_request (VIRTIO_BLK_T_DISCARD, 0, NULL, 0);
      if (st != VIRTIO_BLK_S_OK)
        guest_fail ("discard: status %u", st);
      printf ("info: discard: done\n");
    }
  else
    printf ("info: discard: not offered\n");
}

static void
read_only_tests (void)
{
  uint8_t st;

  fill (WRITE_START, REQ_SECTORS, pattern_b);
  st = do_request (VIRTIO_BLK_T_OUT, WRITE_START, buffer, REQ_SECTORS * SECTOR);
  printf ("write to a read-only disk: %s\n", status_name (st));
  if (st != VIRTIO_BLK_S_IOERR)
    guest_fail ("a write to a read-only disk must fail with IOERR");
  memset (buffer, 0, REQ_SECTORS * SECTOR);
  if (do_request (VIRTIO_BLK_T_IN, WRITE_START, buffer, REQ_SECTORS * SECTOR) != VIRTIO_BLK_S_OK
      || check_sectors (buffer, WRITE_START, REQ_SECTORS, pattern_a) >= 0)
    guest_fail ("the refused write changed the disk");
  printf ("read-only disk unchanged: ok\n");
}

/* ---- throughput mode --------------------------------------------------------------------- */

#define BENCH_QD_MAX  16

static uint64_t bench_seed = 0x9e3779b97f4a7c15ull;

static uint64_t
bench_random (void)
{
  bench_seed = bench_seed * 6364136223846793005ull + 1442695040888963407ull;
  return bench_seed >> 17;
}

static void
bench_run (const char *name, uint32_t type, bool random, uint32_t size, unsigned qd,
           unsigned count, uint64_t capacity, uint8_t *data)
{
  uint64_t span = capacity * SECTOR / size;    /* request-sized slots on the disk */
  unsigned issued = 0, done = 0, in_flight = 0, n_free = 0;
  Request *free_reqs[BENCH_QD_MAX];

  /* Requests complete in any order: a completed one is the next to reuse. */
  for (unsigned i = 0; i < qd && i < BENCH_QD_MAX; i++)
    free_reqs[n_free++] = &reqs[i];
  printf ("bench: %s start\n", name);
  while (done < count)
    {
      while (in_flight < qd && issued < count && n_free > 0)
        {
          Request *r = free_reqs[--n_free];
          uint64_t slot = random ? bench_random () % span : issued % span;

          /* Every request in flight shares one buffer: the data is not looked at. */
          queue_request (r, type, slot * (size / SECTOR), data, size, true, false);
          issued++;
          in_flight++;
        }
      virtq_kick (vq);
      {
        uint32_t len;
        Request *r = virtq_wait_used (vq, &len, TIMEOUT_MS);

        if (!r)
          guest_fail ("bench %s: timeout after %u of %u requests", name, done, count);
        if (r->status != VIRTIO_BLK_S_OK)
          guest_fail ("bench %s: status %u", name, r->status);
        free_reqs[n_free++] = r;
        done++;
        in_flight--;
      }
    }
  printf ("bench: %s done %u requests %lu bytes\n", name, count,
          (unsigned long) ((uint64_t) count * size));
}

static void
bench (uint64_t capacity)
{
  unsigned long mb = 64, ios = 1000;
  uint8_t *data;

  cmdline_uint ("bench_mb", &mb);
  cmdline_uint ("bench_ios", &ios);
  if (capacity * SECTOR < (256u << 20))
    guest_fail ("bench: the disk must have at least 256 MiB");
  data = virtio_alloc (1u << 20, 4096);
  memset (data, 0x5a, 1u << 20);
  bench_run ("seq-write-1m-qd1", VIRTIO_BLK_T_OUT, false, 1u << 20, 1, mb, capacity, data);
  bench_run ("seq-read-1m-qd1", VIRTIO_BLK_T_IN, false, 1u << 20, 1, mb, capacity, data);
  bench_run ("seq-write-1m-qd16", VIRTIO_BLK_T_OUT, false, 1u << 20, 16, mb, capacity, data);
  bench_run ("seq-read-1m-qd16", VIRTIO_BLK_T_IN, false, 1u << 20, 16, mb, capacity, data);
  bench_run ("rand-write-4k-qd1", VIRTIO_BLK_T_OUT, true, 4096, 1, ios, capacity, data);
  bench_run ("rand-read-4k-qd1", VIRTIO_BLK_T_IN, true, 4096, 1, ios, capacity, data);
  bench_run ("rand-write-4k-qd16", VIRTIO_BLK_T_OUT, true, 4096, 16, ios, capacity, data);
  bench_run ("rand-read-4k-qd16", VIRTIO_BLK_T_IN, true, 4096, 16, ios, capacity, data);
  if (do_request (VIRTIO_BLK_T_FLUSH, 0, NULL, 0) != VIRTIO_BLK_S_OK)
    guest_fail ("bench: flush failed");
  printf ("bench: finished\n");
}

int
guest_main (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_MSIX);
  bool ro = cmdline_has ("ro");
  uint64_t capacity;
  char serial[21];
  uint8_t st;
  bool irq_ok;

  printf ("blk test\n");
  printf ("irq: %s\n", virtio_irq_mode_name (mode));
  if (!virtio_find (VIRTIO_ID_BLOCK, 0, &dev))
    guest_fail ("no virtio-blk device");
  if (!virtio_init (&dev, mode))
    guest_fail ("virtio-blk: initialisation failed");
  if (!virtio_negotiate (&dev, VIRTIO_F (VIRTIO_RING_F_INDIRECT_DESC)
                                 | VIRTIO_F (VIRTIO_RING_F_EVENT_IDX)
                                 | VIRTIO_F (VIRTIO_BLK_F_SIZE_MAX)
                                 | VIRTIO_F (VIRTIO_BLK_F_SEG_MAX)
                                 | VIRTIO_F (VIRTIO_BLK_F_RO)
                                 | VIRTIO_F (VIRTIO_BLK_F_BLK_SIZE)
                                 | VIRTIO_F (VIRTIO_BLK_F_FLUSH)
                                 | VIRTIO_F (VIRTIO_BLK_F_DISCARD)
                                 | VIRTIO_F (VIRTIO_BLK_F_WRITE_ZEROES)))
    guest_fail ("virtio-blk: feature negotiation failed");
  printf ("features: ok\n");
  printf ("indirect descriptors: %s\n",
          virtio_has_feature (&dev, VIRTIO_RING_F_INDIRECT_DESC) ? "yes" : "no");
  printf ("event idx: %s\n", virtio_has_feature (&dev, VIRTIO_RING_F_EVENT_IDX) ? "yes" : "no");
  printf ("read-only: %s\n", virtio_has_feature (&dev, VIRTIO_BLK_F_RO) ? "yes" : "no");
  if (ro != virtio_has_feature (&dev, VIRTIO_BLK_F_RO))
    guest_fail ("VIRTIO_BLK_F_RO is %s", ro ? "missing" : "offered on a writable disk");

  capacity = virtio_config_read64 (&dev, CFG_CAPACITY);
  printf ("capacity: %lu sectors\n", (unsigned long) capacity);
  if (capacity < MIN_CAPACITY)
    guest_fail ("the disk must have at least %u sectors", MIN_CAPACITY);
  if (virtio_has_feature (&dev, VIRTIO_BLK_F_BLK_SIZE))
    printf ("info: blk_size %u\n", virtio_config_read32 (&dev, CFG_BLK_SIZE));
  if (virtio_has_feature (&dev, VIRTIO_BLK_F_SIZE_MAX))
    printf ("info: size_max %u\n", virtio_config_read32 (&dev, CFG_SIZE_MAX));
  if (virtio_has_feature (&dev, VIRTIO_BLK_F_SEG_MAX))
    {
      uint32_t seg_max = virtio_config_read32 (&dev, CFG_SEG_MAX);

      printf ("info: seg_max %u\n", seg_max);
      if (seg_max < max_data_segs)
        max_data_segs = seg_max ? seg_max : 1;
    }
  else
    max_data_segs = 1;                  /* without SEG_MAX, assume nothing */

  vq = virtio_queue_setup (&dev, 0, 128);
  if (!vq)
    guest_fail ("virtio-blk: queue 0 setup failed");
  reqs = virtio_alloc (BENCH_QD_MAX * sizeof *reqs, 16);   /* >= NREQ */
  buffer = virtio_alloc (NREQ * REQ_SECTORS * SECTOR, 4096);
  virtio_driver_ok (&dev);
  if (virtio_status (&dev) & VIRTIO_STATUS_NEEDS_RESET)
    guest_fail ("virtio-blk: device needs reset after DRIVER_OK");

  if (cmdline_has ("mode=bench"))
    {
      bench (capacity);
      return 0;
    }

  memset (serial, 0, sizeof serial);
  st = do_request (VIRTIO_BLK_T_GET_ID, 0, (uint8_t *) serial, 20);
  if (st != VIRTIO_BLK_S_OK)
    guest_fail ("GET_ID: status %u", st);
  printf ("serial: %s\n", serial);

  read_tests (capacity);
  if (ro)
    read_only_tests ();
  else
    write_tests ();

  /* Interrupts: at least one arrived (an interrupt can trail its used entry a little). */
  irq_ok = mode != VIRTIO_IRQ_POLL && virtq_wait_irq (vq, 1000);
  printf ("info: queue 0: %u completed, %u kicks, %u suppressed, %u indirect, %u interrupts\n",
          vq->completed, vq->kicks, vq->kicks_suppressed, vq->indirect_used, vq->irqs);
  if (mode != VIRTIO_IRQ_POLL && !irq_ok)
    guest_fail ("no %s interrupt arrived for queue 0", virtio_irq_mode_name (mode));
  if (mode != VIRTIO_IRQ_POLL)
    printf ("interrupts: ok\n");
  if (virtio_status (&dev) & VIRTIO_STATUS_NEEDS_RESET)
    guest_fail ("virtio-blk: device needs reset");
  return 0;
}
