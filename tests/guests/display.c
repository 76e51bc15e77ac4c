/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * display: draws a known picture (display-pattern.h) in two modes, 640x480 and then
 * 1024x768, at 32 bpp, on either display card:
 *
 *   gpu=bochs   (default) the bochs-display PCI card (1234:1111): checks the dispi ID, the
 *               EDID block and the extended registers, sets each mode through the dispi
 *               registers (read back) and draws straight into the framebuffer (BAR0)
 *   gpu=virtio  virtio-gpu: GET_DISPLAY_INFO, GET_EDID, then per mode a 2D resource
 *               (B8G8R8X8) backed by guest RAM, drawn there, TRANSFER_TO_HOST_2D, SET_SCANOUT
 *               and RESOURCE_FLUSH; the first resource is unreferenced after the second is
 *               shown
 *
 * After each mode it prints "mode WxH: drawn" and waits hold=N seconds (default 0) so that
 * a host can look. Then "idle", idle=N seconds (default 0) of drawing nothing, then it
 * changes one 16x16 square (the counter goes from 2 to 3: display-pattern.h), prints
 * "changed", idles idle=N seconds again and passes. Waiting is spinning on the TSC: nothing
 * but the square touches the screen after "idle".
 *
 * Command line: gpu=bochs|virtio hold=N idle=N strict (virtio-gpu: also send a backing page
 * outside RAM, which QEMU accepts and Vireo refuses)
 *
 * Benchmark modes (bochs-display only; bench/display drives them):
 *
 *   mode=idle   sets width x height (default 1920x1080), fills the screen with the
 *               calibration colour (BENCH_CALIBRATION), prints "bench: start" and halts
 *               for good (cli; hlt): nothing changes on screen any more.
 *   mode=bench  sets the mode, fills the screen with the calibration colour, prints
 *               "bench: ready WxH" and waits for any byte on COM1 (at most hold=N seconds,
 *               default 60) so that the host can find the picture on its screen. Then
 *               "bench: start fps=N" and frames 1, 2, ...: each fills the whole screen with
 *               frame n's colour (bench_colour: n mod 64 in 2 bits per channel) by three
 *               `rep stosq` over whole rows (the top, the bottom, then the middle band of
 *               2*BENCH_BAND rows, so that the centre of the picture changes last), then
 *               prints "Fn". Frames are paced to fps=N a second (default 60) on the TSC:
 *               a frame that is late starts at once (nothing is skipped), so a guest that
 *               cannot keep up draws as fast as it can. frames=N stops after N frames
 *               (default 0: forever), then prints "bench: done" and passes.
 *               fill=l uses rep stosl (one pixel a store); target=ram draws into guest RAM
 *               instead of the framebuffer (what the CPU costs without the display).
 *
 *   An emulating KVM backend executes a rep string instruction one element at a time
 *   (~0.5 us each on the build hosts): 1920x1080 then takes ~0.5 s a frame.
 */

#include "guest.h"
#include "pci.h"
#include "virtio.h"
#include "display-pattern.h"

#define MAX_WIDTH     1024
#define MAX_HEIGHT    768

/* bochs-display */
#define VBE_ID          0x0
#define VBE_XRES        0x1
#define VBE_YRES        0x2
#define VBE_BPP         0x3
#define VBE_ENABLE      0x4
#define VBE_BANK        0x5
#define VBE_VIRT_WIDTH  0x6
#define VBE_VIRT_HEIGHT 0x7
#define VBE_X_OFFSET    0x8
#define VBE_Y_OFFSET    0x9
#define VBE_VIDEO_MEMORY_64K 0xa
#define VBE_ENABLED     0x01
#define VBE_LFB_ENABLED 0x40

/* virtio-gpu (virtio spec 5.7; <linux/virtio_gpu.h>) */
#define GPU_CMD_GET_DISPLAY_INFO        0x0100
#define GPU_CMD_RESOURCE_CREATE_2D      0x0101
#define GPU_CMD_RESOURCE_UNREF          0x0102
#define GPU_CMD_SET_SCANOUT             0x0103
#define GPU_CMD_RESOURCE_FLUSH          0x0104
#define GPU_CMD_TRANSFER_TO_HOST_2D     0x0105
#define GPU_CMD_RESOURCE_ATTACH_BACKING 0x0106
#define GPU_CMD_GET_EDID                0x010a
#define GPU_RESP_OK_NODATA              0x1100
#define GPU_RESP_OK_DISPLAY_INFO        0x1101
#define GPU_RESP_OK_EDID                0x1104
#define GPU_FORMAT_B8G8R8X8_UNORM       2
#define GPU_F_EDID                      1

typedef struct
{
  uint32_t type, flags;
  uint64_t fence_id;
  uint32_t ctx_id;
  uint8_t  ring_idx, padding[3];
} GpuHdr;

typedef struct
{
  uint32_t x, y, width, height;
} GpuRect;

static uint32_t row_bars[MAX_WIDTH] __attribute__ ((aligned (8)));
static uint32_t row_checker[2][MAX_WIDTH] __attribute__ ((aligned (8)));

static unsigned long hold_s, idle_s;

/* ---- drawing ---------------------------------------------------------------------------- */

static void
copy_row (uint32_t *dst, const uint32_t *src, uint32_t w)
{
  volatile uint64_t *d = (volatile uint64_t *) dst;
  const uint64_t *s = (const uint64_t *) src;

  for (uint32_t i = 0; i < w / 2; i++)
    d[i] = s[i];
}

static void
draw_cell (uint32_t *fb, uint32_t stride_px, uint32_t h, int cell, uint32_t counter)
{
  uint32_t colour = display_pattern_cell_colour (cell, counter);
  uint32_t x0 = DISPLAY_PATTERN_COUNTER_X + (uint32_t) cell * DISPLAY_PATTERN_CELL;
  uint32_t y0 = h / 2 + DISPLAY_PATTERN_COUNTER_DY;

  for (uint32_t y = y0; y < y0 + DISPLAY_PATTERN_CELL; y++)
    for (uint32_t x = x0; x < x0 + DISPLAY_PATTERN_CELL; x++)
      ((volatile uint32_t *) fb)[y * stride_px + x] = colour;
}

/* The whole picture; @fb has rows of @stride_px pixels. */
static void
draw (uint32_t *fb, uint32_t w, uint32_t h, uint32_t stride_px, uint32_t counter)
{
  for (uint32_t x = 0; x < w; x++)
    {
      row_bars[x] = display_pattern_bar (x, w);
      row_checker[0][x] = display_pattern_checker (x, 0);
      row_checker[1][x] = display_pattern_checker (x, 16);
    }
  for (uint32_t y = 0; y < h; y++)
    copy_row (fb + y * stride_px, y < h / 2 ? row_bars : row_checker[(y / 16) & 1], w);
  for (int cell = 0; cell < DISPLAY_PATTERN_BITS; cell++)
    draw_cell (fb, stride_px, h, cell, counter);
}

/* Checks a few pixels against the pattern (what the guest reads back from its memory). */
static void
check_drawn (const uint32_t *fb, uint32_t w, uint32_t h, uint32_t stride_px, uint32_t counter)
{
  static const uint32_t probes[][2] = {
    { 0, 0 }, { 1, 1 }, { 7, 5 }, { 15, 16 }, { 100, 200 }, { 999, 767 }, { 639, 479 },
    { 144, 0 }, { 150, 1000 },
  };

  for (unsigned i = 0; i < ARRAY_SIZE (probes); i++)
    {
      uint32_t x = probes[i][0] % w, y = probes[i][1] % h;
      uint32_t got = fb[y * stride_px + x] & 0xffffff;
      uint32_t want = display_pattern_pixel (x, y, w, h, counter);

      if (got != want)
        guest_fail ("pixel (%u,%u) reads %06x, not %06x", x, y, got, want);
    }
}

static void
wait_seconds (unsigned long s)
{
  uint64_t end = virtio_now_ms () + s * 1000;

  while (virtio_now_ms () < end)
    cpu_relax ();
}

/* ---- bochs-display ---------------------------------------------------------------------- */

static uintptr_t bochs_mmio;

static uint16_t
dispi_read (unsigned index)
{
  return *(volatile uint16_t *) (bochs_mmio + 0x500 + index * 2);
}

static void
dispi_write (unsigned index, uint16_t v)
{
  *(volatile uint16_t *) (bochs_mmio + 0x500 + index * 2) = v;
}

static void
bochs_set_mode (uint32_t w, uint32_t h)
{
  /* The sequence Linux's bochs DRM driver uses. */
  dispi_write (VBE_ENABLE, 0);
  dispi_write (VBE_BPP, 32);
  dispi_write (VBE_XRES, (uint16_t) w);
  dispi_write (VBE_YRES, (uint16_t) h);
  dispi_write (VBE_BANK, 0);
  dispi_write (VBE_VIRT_WIDTH, (uint16_t) w);
  dispi_write (VBE_VIRT_HEIGHT, (uint16_t) h);
  dispi_write (VBE_X_OFFSET, 0);
  dispi_write (VBE_Y_OFFSET, 0);
  dispi_write (VBE_ENABLE, VBE_ENABLED | VBE_LFB_ENABLED);
  if (dispi_read (VBE_XRES) != w || dispi_read (VBE_YRES) != h || dispi_read (VBE_BPP) != 32
      || dispi_read (VBE_VIRT_WIDTH) != w
      || (dispi_read (VBE_ENABLE) & (VBE_ENABLED | VBE_LFB_ENABLED))
         != (VBE_ENABLED | VBE_LFB_ENABLED))
    guest_fail ("the dispi registers do not read back %ux%ux32", w, h);
}

static void
check_edid (const uint8_t *edid)
{
  static const uint8_t header[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
  uint8_t sum = 0;

  if (memcmp (edid, header, 8) != 0)
    guest_fail ("no EDID header");
  for (int i = 0; i < 128; i++)
    sum = (uint8_t) (sum + edid[i]);
  if (sum != 0)
    guest_fail ("EDID checksum is off by %u", sum);
  printf ("edid: ok\n");
  printf ("info: edid preferred %ux%u\n", edid[56] | ((edid[58] >> 4) << 8),
          edid[59] | ((edid[61] >> 4) << 8));
}


/* ---- benchmark modes -------------------------------------------------------------------- */

#define BENCH_CALIBRATION 0xff00ffu   /* magenta: no bench_colour () has 0x00 or 0xff */
#define BENCH_BAND        64u         /* half the height of the band drawn last */

static bool bench_quad = true;   /* rep stosq (two pixels a store); fill=l: rep stosl */

/* Frame @n's colour: n mod 64, two bits per channel, levels 0x20 0x60 0xa0 0xe0. */
static uint32_t
bench_colour (uint64_t n)
{
  static const uint8_t level[4] = { 0x20, 0x60, 0xa0, 0xe0 };
  unsigned c = (unsigned) (n % 64);

  return (uint32_t) level[c & 3] << 16 | (uint32_t) level[(c >> 2) & 3] << 8
         | level[(c >> 4) & 3];
}

/* Rows [@y0, @y1) of @fb (@w pixels each, no padding) in @colour: one rep stosl. */
static void
bench_fill_rows (uint32_t *fb, uint32_t w, uint32_t y0, uint32_t y1, uint32_t colour)
{
  void *dst = fb + (uint64_t) y0 * w;
  uint64_t count = (uint64_t) (y1 - y0) * w;

  if (y1 <= y0)
    return;
  if (bench_quad && count % 2 == 0)
    {
      uint64_t q = (uint64_t) colour << 32 | colour;

      count /= 2;
      __asm__ volatile ("cld; rep stosq"
                        : "+D"(dst), "+c"(count)
                        : "a"(q)
                        : "memory");
      return;
    }
  __asm__ volatile ("cld; rep stosl"
                    : "+D"(dst), "+c"(count)
                    : "a"(colour)
                    : "memory");
}

static void
bench_fill (uint32_t *fb, uint32_t w, uint32_t h, uint32_t colour)
{
  uint32_t band = h / 4 < BENCH_BAND ? h / 4 : BENCH_BAND;

  bench_fill_rows (fb, w, 0, h / 2 - band, colour);
  bench_fill_rows (fb, w, h / 2 + band, h, colour);
  bench_fill_rows (fb, w, h / 2 - band, h / 2 + band, colour);
}

static void
bench_halt (void)
{
  for (;;)
    __asm__ volatile ("cli; hlt" ::: "memory");
}

static void
run_bochs_bench (uint32_t *fb, bool idle)
{
  unsigned long w = 1920, h = 1080, fps = 60, frames = 0, hold = 60;
  uint64_t start, end;

  cmdline_uint ("width", &w);
  cmdline_uint ("height", &h);
  cmdline_uint ("fps", &fps);
  cmdline_uint ("frames", &frames);
  cmdline_uint ("hold", &hold);
  if (w < 64 || h < 64 || w > 4096 || h > 4096
      || w * h * 4 > dispi_read (VBE_VIDEO_MEMORY_64K) * 65536ul)
    guest_fail ("bench: %lux%lu does not fit the video memory", w, h);
  if (fps == 0)
    fps = 60;
  bench_quad = !cmdline_has ("fill=l");
  if (cmdline_has ("target=ram"))
    fb = virtio_alloc (w * h * 4, 4096);

  bochs_set_mode ((uint32_t) w, (uint32_t) h);
  bench_fill (fb, (uint32_t) w, (uint32_t) h, BENCH_CALIBRATION);
  if (idle)
    {
      printf ("bench: start idle %lux%lu\n", w, h);
      bench_halt ();
    }

  /* Wait for the host's go (any byte on COM1), or hold seconds. */
  while (inb (0x3f8 + 5) & 0x01)
    (void) inb (0x3f8);
  printf ("bench: ready %lux%lu\n", w, h);
  end = virtio_now_ms () + hold * 1000;
  while (!(inb (0x3f8 + 5) & 0x01) && virtio_now_ms () < end)
    for (int i = 0; i < 100; i++)
      cpu_relax ();
  while (inb (0x3f8 + 5) & 0x01)
    (void) inb (0x3f8);

  printf ("bench: start fps=%lu\n", fps);
  start = virtio_now_ms ();
  for (uint64_t n = 1; frames == 0 || n <= frames; n++)
    {
      uint64_t due = start + n * 1000 / fps;

      bench_fill (fb, (uint32_t) w, (uint32_t) h, bench_colour (n));
      printf ("F%lu\n", (unsigned long) n);
      while (virtio_now_ms () < due)
        cpu_relax ();
    }
  printf ("bench: done %lu frames in %lu ms\n", frames,
          (unsigned long) (virtio_now_ms () - start));
}

static void
run_bochs (void)
{
  PciDevice devs[32];
  const PciDevice *d = NULL;
  uint8_t edid[128];
  uint32_t *fb;
  int n = pci_scan (devs, 32);

  for (int i = 0; i < n; i++)
    if (devs[i].vendor_id == 0x1234 && devs[i].device_id == 0x1111)
      d = &devs[i];
  if (d == NULL)
    guest_fail ("no bochs-display card (1234:1111)");
  printf ("bochs-display: class %06x\n", d->class_code);

  fb = phys ((uintptr_t) pci_bar_map (d, 0));
  bochs_mmio = (uintptr_t) pci_bar_map (d, 2);
  if (fb == NULL || bochs_mmio == 0)
    guest_fail ("cannot map the BARs");
  printf ("info: framebuffer at %p, registers at %lx\n", (void *) fb,
          (unsigned long) bochs_mmio);

  printf ("dispi id: %04x\n", dispi_read (VBE_ID));
  if ((dispi_read (VBE_ID) & 0xfff0) != 0xb0c0)
    guest_fail ("not a dispi interface");
  printf ("info: video memory %u KiB\n", dispi_read (VBE_VIDEO_MEMORY_64K) * 64);
  if (dispi_read (VBE_VIDEO_MEMORY_64K) * 65536u < MAX_WIDTH * MAX_HEIGHT * 4)
    guest_fail ("too little video memory");
  if (pci_read8 (d, 0x08) >= 2)
    {
      uint32_t size = mmio_read32 (bochs_mmio + 0x600);

      printf ("qext: size %u, byte order %08x\n", size, mmio_read32 (bochs_mmio + 0x604));
      mmio_write32 (bochs_mmio + 0x604, 0x1e1e1e1e);
    }
  for (int i = 0; i < 128; i++)
    edid[i] = *(volatile uint8_t *) (bochs_mmio + i);
  check_edid (edid);

  if (cmdline_has ("mode=bench") || cmdline_has ("mode=idle"))
    {
      run_bochs_bench (fb, cmdline_has ("mode=idle"));
      return;
    }

  bochs_set_mode (640, 480);
  draw (fb, 640, 480, 640, 1);
  check_drawn (fb, 640, 480, 640, 1);
  printf ("mode 640x480: drawn\n");
  wait_seconds (hold_s);

  bochs_set_mode (1024, 768);
  draw (fb, 1024, 768, 1024, 2);
  check_drawn (fb, 1024, 768, 1024, 2);
  printf ("mode 1024x768: drawn\n");
  wait_seconds (hold_s);

  printf ("idle\n");
  wait_seconds (idle_s);
  draw_cell (fb, 1024, 768, DISPLAY_PATTERN_BITS - 1, 3);
  check_drawn (fb, 1024, 768, 1024, 3);
  printf ("changed\n");
  wait_seconds (idle_s);
}

/* ---- virtio-gpu ------------------------------------------------------------------------- */

static VirtioDevice gpu;
static VirtQueue *ctrlq;
static const char *gpu_what = "";   /* the hostile command being tried, for messages */

/* Sends @req (@len bytes, a GpuHdr first) and waits for a response of @resp_len bytes. */
static void
gpu_command (void *req, uint32_t len, void *resp, uint32_t resp_len, uint32_t want)
{
  VirtioBuf bufs[2] = { { req, len, false }, { resp, resp_len, true } };
  GpuHdr *hdr = resp;
  uint32_t got = 0;

  memset (resp, 0, resp_len);
  if (virtq_add (ctrlq, bufs, 1, 1, req, false) < 0)
    guest_fail ("virtio-gpu: control queue full");
  virtq_kick (ctrlq);
  if (virtq_wait_used (ctrlq, &got, 10000) != req)
    guest_fail ("virtio-gpu: command 0x%x timed out", ((GpuHdr *) req)->type);
  if (hdr->type != want)
    guest_fail ("virtio-gpu: command 0x%x%s%s answered 0x%x", ((GpuHdr *) req)->type,
                *gpu_what ? " " : "", gpu_what, hdr->type);
}

static void
gpu_simple (void *req, uint32_t len)
{
  GpuHdr *resp = virtio_alloc (sizeof *resp, 64);

  gpu_command (req, len, resp, sizeof *resp, GPU_RESP_OK_NODATA);
}

static void
gpu_transfer_flush (uint32_t res, uint32_t w, GpuRect r)
{
  struct { GpuHdr hdr; GpuRect r; uint64_t offset; uint32_t resource_id, padding; } *xfer;
  struct { GpuHdr hdr; GpuRect r; uint32_t resource_id, padding; } *flush;

  xfer = virtio_alloc (sizeof *xfer, 64);
  xfer->hdr.type = GPU_CMD_TRANSFER_TO_HOST_2D;
  xfer->r = r;
  xfer->offset = ((uint64_t) r.y * w + r.x) * 4;
  xfer->resource_id = res;
  gpu_simple (xfer, sizeof *xfer);

  flush = virtio_alloc (sizeof *flush, 64);
  flush->hdr.type = GPU_CMD_RESOURCE_FLUSH;
  flush->r = r;
  flush->resource_id = res;
  gpu_simple (flush, sizeof *flush);
}

/* A resource of @w x @h backed by a fresh buffer, drawn, shown. Returns the buffer. */
static uint32_t *
gpu_mode (uint32_t res, uint32_t w, uint32_t h, uint32_t counter)
{
  struct { GpuHdr hdr; uint32_t resource_id, format, width, height; } *create;
  struct { GpuHdr hdr; uint32_t resource_id, nr_entries; uint64_t addr;
           uint32_t length, padding; } *attach;
  struct { GpuHdr hdr; GpuRect r; uint32_t scanout_id, resource_id; } *scanout;
  uint32_t *buf = virtio_alloc (w * h * 4, 4096);
  GpuRect full = { 0, 0, w, h };

  create = virtio_alloc (sizeof *create, 64);
  create->hdr.type = GPU_CMD_RESOURCE_CREATE_2D;
  create->resource_id = res;
  create->format = GPU_FORMAT_B8G8R8X8_UNORM;
  create->width = w;
  create->height = h;
  gpu_simple (create, sizeof *create);

  attach = virtio_alloc (sizeof *attach, 64);
  attach->hdr.type = GPU_CMD_RESOURCE_ATTACH_BACKING;
  attach->resource_id = res;
  attach->nr_entries = 1;
  attach->addr = (uintptr_t) buf;
  attach->length = w * h * 4;
  gpu_simple (attach, sizeof *attach);

  draw (buf, w, h, w, counter);
  check_drawn (buf, w, h, w, counter);

  /* Transfer before showing: the first frame on screen is complete. */
  {
    struct { GpuHdr hdr; GpuRect r; uint64_t offset; uint32_t resource_id, padding; } *xfer;

    xfer = virtio_alloc (sizeof *xfer, 64);
    xfer->hdr.type = GPU_CMD_TRANSFER_TO_HOST_2D;
    xfer->r = full;
    xfer->resource_id = res;
    gpu_simple (xfer, sizeof *xfer);
  }
  scanout = virtio_alloc (sizeof *scanout, 64);
  scanout->hdr.type = GPU_CMD_SET_SCANOUT;
  scanout->r = full;
  scanout->scanout_id = 0;
  scanout->resource_id = res;
  gpu_simple (scanout, sizeof *scanout);
  gpu_transfer_flush (res, w, full);
  return buf;
}

/* Sends @req expecting the error @want (the device must survive each). */
static void
gpu_expect (void *req, uint32_t len, uint32_t want, const char *what)
{
  GpuHdr *resp = virtio_alloc (sizeof *resp, 64);

  gpu_what = what;
  gpu_command (req, len, resp, sizeof *resp, want);
  gpu_what = "";
}

/* Hostile commands: each answers an error, as QEMU's device does. */
static void
gpu_bad_commands (void)
{
  struct { GpuHdr hdr; uint32_t resource_id, format, width, height; } *create;
  struct { GpuHdr hdr; uint32_t resource_id, nr_entries; uint64_t addr;
           uint32_t length, padding; } *attach;
  struct { GpuHdr hdr; GpuRect r; uint64_t offset; uint32_t resource_id, padding; } *xfer;
  struct { GpuHdr hdr; GpuRect r; uint32_t scanout_id, resource_id; } *scanout;
  struct { GpuHdr hdr; GpuRect r; uint32_t resource_id, padding; } *flush;
  GpuHdr *unknown;

  create = virtio_alloc (sizeof *create, 64);
  *create = (typeof (*create)) { .hdr.type = GPU_CMD_RESOURCE_CREATE_2D, .resource_id = 0,
                                 .format = GPU_FORMAT_B8G8R8X8_UNORM, .width = 64,
                                 .height = 64 };
  gpu_expect (create, sizeof *create, 0x1203, "resource id 0");
  create->resource_id = 99;
  create->format = 0x7777;
  gpu_expect (create, sizeof *create, 0x1205, "unknown format");
  create->format = GPU_FORMAT_B8G8R8X8_UNORM;
  gpu_simple (create, sizeof *create);
  gpu_expect (create, sizeof *create, 0x1203, "resource id taken");

  attach = virtio_alloc (sizeof *attach, 64);
  *attach = (typeof (*attach)) { .hdr.type = GPU_CMD_RESOURCE_ATTACH_BACKING, .resource_id = 98,
                                 .nr_entries = 1, .addr = 0x1000000, .length = 4096 };
  gpu_expect (attach, sizeof *attach, 0x1203, "backing for no resource");
  attach->resource_id = 99;
  if (cmdline_has ("strict"))
    {
      /* QEMU 7.2 accepts this page (it maps the PCI hole), Vireo refuses all but RAM. */
      attach->addr = 0x80000000;
      gpu_expect (attach, sizeof *attach, 0x1200, "backing outside RAM");
    }

  xfer = virtio_alloc (sizeof *xfer, 64);
  *xfer = (typeof (*xfer)) { .hdr.type = GPU_CMD_TRANSFER_TO_HOST_2D, .r = { 0, 0, 65, 64 },
                               .resource_id = 99 };
  gpu_expect (xfer, sizeof *xfer, 0x1200, "transfer without backing");
  attach->addr = (uintptr_t) virtio_alloc (64 * 64 * 4, 4096);
  attach->length = 64 * 64 * 4;
  gpu_simple (attach, sizeof *attach);
  gpu_expect (xfer, sizeof *xfer, 0x1205, "transfer past the resource");

  scanout = virtio_alloc (sizeof *scanout, 64);
  *scanout = (typeof (*scanout)) { .hdr.type = GPU_CMD_SET_SCANOUT, .r = { 0, 0, 64, 64 },
                                  .scanout_id = 5, .resource_id = 99 };
  gpu_expect (scanout, sizeof *scanout, 0x1202, "scanout 5");
  scanout->scanout_id = 0;
  scanout->r.x = 1;
  gpu_expect (scanout, sizeof *scanout, 0x1205, "scanout past the resource");
  scanout->resource_id = 98;
  gpu_expect (scanout, sizeof *scanout, 0x1203, "scanout of no resource");

  flush = virtio_alloc (sizeof *flush, 64);
  *flush = (typeof (*flush)) { .hdr.type = GPU_CMD_RESOURCE_FLUSH, .r = { 0, 0, 16, 16 },
                                .resource_id = 98 };
  gpu_expect (flush, sizeof *flush, 0x1203, "flush of no resource");

  unknown = virtio_alloc (sizeof *unknown, 64);
  unknown->type = 0x01ff;
  gpu_expect (unknown, sizeof *unknown, 0x1200, "unknown command");

  {
    struct { GpuHdr hdr; uint32_t resource_id, padding; } *unref = virtio_alloc (sizeof *unref, 64);

    unref->hdr.type = GPU_CMD_RESOURCE_UNREF;
    unref->resource_id = 99;
    gpu_simple (unref, sizeof *unref);
    gpu_expect (unref, sizeof *unref, 0x1203, "unref twice");
  }
  printf ("errors: ok\n");
}

static void
run_virtio (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_POLL);
  GpuHdr *req;
  struct { GpuHdr hdr; struct { GpuRect r; uint32_t enabled, flags; } pmodes[16]; } *info;
  struct { GpuHdr hdr; uint32_t scanout, padding; } *edid_req;
  struct { GpuHdr hdr; uint32_t size, padding; uint8_t edid[1024]; } *edid;
  struct { GpuHdr hdr; uint32_t resource_id, padding; } *unref;
  uint32_t *buf;
  GpuRect cell;

  if (!virtio_find (VIRTIO_ID_GPU, 0, &gpu))
    guest_fail ("no virtio-gpu device");
  printf ("virtio-gpu: class %06x\n", gpu.pci.class_code);
  if (!virtio_init (&gpu, mode))
    guest_fail ("virtio-gpu: initialisation failed");
  if (!virtio_negotiate (&gpu, VIRTIO_F (GPU_F_EDID)))
    guest_fail ("virtio-gpu: feature negotiation failed");
  printf ("features: edid %s\n", virtio_has_feature (&gpu, GPU_F_EDID) ? "yes" : "no");
  ctrlq = virtio_queue_setup (&gpu, 0, 0);
  if (!ctrlq || !virtio_queue_setup (&gpu, 1, 0))
    guest_fail ("virtio-gpu: queue setup failed");
  virtio_driver_ok (&gpu);
  printf ("scanouts: %u\n", virtio_config_read32 (&gpu, 8));

  req = virtio_alloc (sizeof *req, 64);
  req->type = GPU_CMD_GET_DISPLAY_INFO;
  info = virtio_alloc (sizeof *info, 64);
  gpu_command (req, sizeof *req, info, sizeof *info, GPU_RESP_OK_DISPLAY_INFO);
  printf ("info: display 0 %ux%u enabled %u\n", info->pmodes[0].r.width,
          info->pmodes[0].r.height, info->pmodes[0].enabled);
  if (!info->pmodes[0].enabled)
    guest_fail ("scanout 0 is not enabled");

  if (virtio_has_feature (&gpu, GPU_F_EDID))
    {
      edid_req = virtio_alloc (sizeof *edid_req, 64);
      edid_req->hdr.type = GPU_CMD_GET_EDID;
      edid = virtio_alloc (sizeof *edid, 64);
      gpu_command (edid_req, sizeof *edid_req, edid, sizeof *edid, GPU_RESP_OK_EDID);
      check_edid (edid->edid);
    }

  gpu_bad_commands ();
  gpu_mode (1, 640, 480, 1);
  printf ("mode 640x480: drawn\n");
  wait_seconds (hold_s);

  buf = gpu_mode (2, 1024, 768, 2);
  unref = virtio_alloc (sizeof *unref, 64);
  unref->hdr.type = GPU_CMD_RESOURCE_UNREF;
  unref->resource_id = 1;
  gpu_simple (unref, sizeof *unref);
  printf ("mode 1024x768: drawn\n");
  wait_seconds (hold_s);

  printf ("idle\n");
  wait_seconds (idle_s);
  draw_cell (buf, 1024, 768, DISPLAY_PATTERN_BITS - 1, 3);
  cell = (GpuRect) { DISPLAY_PATTERN_COUNTER_X + (DISPLAY_PATTERN_BITS - 1) * DISPLAY_PATTERN_CELL,
                     768 / 2 + DISPLAY_PATTERN_COUNTER_DY, DISPLAY_PATTERN_CELL,
                     DISPLAY_PATTERN_CELL };
  gpu_transfer_flush (2, 1024, cell);
  printf ("changed\n");
  wait_seconds (idle_s);
}

int
guest_main (void)
{
  bool virtio = strncmp (cmdline (), "gpu=virtio", 10) == 0 || cmdline_has ("gpu=virtio");

  printf ("display test\n");
  cmdline_uint ("hold", &hold_s);
  cmdline_uint ("idle", &idle_s);
  printf ("gpu: %s\n", virtio ? "virtio" : "bochs");
  virtio_now_ms ();   /* calibrates the TSC */
  if (virtio)
    run_virtio ();
  else
    run_bochs ();
  return 0;
}
