/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * input: two virtio-input devices (virtio 1.x, 5.8), a keyboard and an absolute tablet.
 *
 * Reads each device's configuration (VIRTIO_INPUT_CFG_ID_NAME, ID_DEVIDS, EV_BITS for
 * EV_KEY / EV_REL / EV_ABS, ABS_INFO for ABS_X / ABS_Y), tells them apart by their bits,
 * posts event buffers, prints "ready" and then every event as
 *     event keyboard|tablet TYPE CODE VALUE
 * (Linux evdev numbers, SYN_REPORT included) until the keyboard reports the release of
 * KEY_ESC and its SYN_REPORT; then PASS.  Names and bitmap sizes differ between machines
 * and are info lines.
 *
 * The host (test-virtio.c) injects one packet at a time and waits for its SYN_REPORT line
 * before the next, so the order of lines across the two devices is deterministic.
 *
 * Command line: irq=msix|intx|poll (default msix).
 */

#include "guest.h"
#include "virtio.h"

#define CFG_SELECT   0
#define CFG_SUBSEL   1
#define CFG_SIZE     2
#define CFG_U        8

#define VIRTIO_INPUT_CFG_ID_NAME    0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL  0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS  0x03
#define VIRTIO_INPUT_CFG_EV_BITS    0x11
#define VIRTIO_INPUT_CFG_ABS_INFO   0x12

#define EV_SYN       0
#define EV_KEY       1
#define EV_REL       2
#define EV_ABS       3
#define KEY_ESC      1
#define KEY_1        2
#define KEY_ENTER    28
#define KEY_A        30
#define KEY_LEFTSHIFT 42
#define BTN_LEFT     0x110
#define BTN_RIGHT    0x111
#define BTN_MIDDLE   0x112
#define REL_WHEEL    8
#define ABS_X        0
#define ABS_Y        1

#define NBUFS        64
#define TIMEOUT_MS   300000

typedef struct
{
  uint16_t type;
  uint16_t code;
  uint32_t value;
} InputEvent;

typedef struct
{
  VirtioDevice dev;
  VirtQueue   *eventq;
  VirtQueue   *statusq;
  InputEvent  *events;
  const char  *role;
  uint8_t      bits[4][128];      /* EV_BITS by type: SYN, KEY, REL, ABS */
  uint8_t      sizes[4];
} Input;

static Input inputs[2];

/* Selects @select/@subsel and returns the size the device reports. */
static uint8_t
cfg_select (Input *in, uint8_t select, uint8_t subsel)
{
  virtio_config_write8 (&in->dev, CFG_SELECT, select);
  virtio_config_write8 (&in->dev, CFG_SUBSEL, subsel);
  return virtio_config_read8 (&in->dev, CFG_SIZE);
}

static bool
has_bit (const Input *in, unsigned type, unsigned code)
{
  return code / 8 < in->sizes[type] && (in->bits[type][code / 8] >> (code % 8) & 1);
}

static unsigned
count_bits (const Input *in, unsigned type)
{
  unsigned n = 0;

  for (unsigned i = 0; i < in->sizes[type]; i++)
    for (uint8_t b = in->bits[type][i]; b; b &= b - 1)
      n++;
  return n;
}

static void
read_config (Input *in)
{
  char name[129];
  uint8_t size;

  size = cfg_select (in, VIRTIO_INPUT_CFG_ID_NAME, 0);
  if (size > 128)
    guest_fail ("ID_NAME size %u", size);
  virtio_config_read (&in->dev, CFG_U, name, size);
  name[size] = 0;
  printf ("info: %02x.%u name \"%s\"\n", in->dev.pci.dev, in->dev.pci.fn, name);
  size = cfg_select (in, VIRTIO_INPUT_CFG_ID_DEVIDS, 0);
  if (size >= 8)
    printf ("info: %02x.%u ids bus 0x%x vendor 0x%x product 0x%x version 0x%x\n",
            in->dev.pci.dev, in->dev.pci.fn, virtio_config_read16 (&in->dev, CFG_U),
            virtio_config_read16 (&in->dev, CFG_U + 2), virtio_config_read16 (&in->dev, CFG_U + 4),
            virtio_config_read16 (&in->dev, CFG_U + 6));
  for (unsigned t = EV_KEY; t <= EV_ABS; t++)
    {
      size = cfg_select (in, VIRTIO_INPUT_CFG_EV_BITS, (uint8_t) t);
      if (size > 128)
        guest_fail ("EV_BITS %u size %u", t, size);
      in->sizes[t] = size;
      virtio_config_read (&in->dev, CFG_U, in->bits[t], size);
    }
  printf ("info: %02x.%u bits: %u key, %u rel, %u abs\n", in->dev.pci.dev, in->dev.pci.fn,
          count_bits (in, EV_KEY), count_bits (in, EV_REL), count_bits (in, EV_ABS));
  /* A size of 0 for an unset selector is required (5.8.5.1). */
  if (cfg_select (in, 0x7f, 0) != 0)
    guest_fail ("an unknown select does not read size 0");
}

static void
abs_info (Input *in, unsigned axis, const char *name)
{
  uint8_t size = cfg_select (in, VIRTIO_INPUT_CFG_ABS_INFO, (uint8_t) axis);
  uint32_t min, max;

  if (size < 8)
    guest_fail ("ABS_INFO for %s: size %u", name, size);
  min = virtio_config_read32 (&in->dev, CFG_U);
  max = virtio_config_read32 (&in->dev, CFG_U + 4);
  printf ("tablet: abs %s %d..%d\n", name, (int32_t) min, (int32_t) max);
}

static void
post (Input *in, InputEvent *ev)
{
  VirtioBuf b = { ev, sizeof *ev, true };

  if (virtq_add (in->eventq, &b, 0, 1, ev, false) < 0)
    guest_fail ("event queue full");
}

static void
setup (Input *in, int index, VirtioIrqMode mode)
{
  if (!virtio_find (VIRTIO_ID_INPUT, index, &in->dev))
    guest_fail ("virtio-input device %d missing", index);
  if (!virtio_init (&in->dev, mode))
    guest_fail ("virtio-input %d: initialisation failed", index);
  if (!virtio_negotiate (&in->dev, VIRTIO_F (VIRTIO_RING_F_INDIRECT_DESC)
                                     | VIRTIO_F (VIRTIO_RING_F_EVENT_IDX)))
    guest_fail ("virtio-input %d: feature negotiation failed", index);
  read_config (in);
  in->eventq = virtio_queue_setup (&in->dev, 0, NBUFS);
  in->statusq = virtio_queue_setup (&in->dev, 1, NBUFS);
  if (!in->eventq || !in->statusq)
    guest_fail ("virtio-input %d: queue setup failed", index);
  in->events = virtio_alloc (NBUFS * sizeof (InputEvent), 64);
  for (unsigned i = 0; i < in->eventq->size && i < NBUFS; i++)
    post (in, &in->events[i]);
}

int
guest_main (void)
{
  VirtioIrqMode mode = virtio_irq_mode_from_cmdline (VIRTIO_IRQ_MSIX);
  Input *kbd = NULL, *tablet = NULL;
  VirtQueue *vqs[2];
  bool esc_released = false;
  unsigned events = 0;

  printf ("input test\n");
  printf ("irq: %s\n", virtio_irq_mode_name (mode));
  for (int i = 0; i < 2; i++)
    {
      setup (&inputs[i], i, mode);
      if (has_bit (&inputs[i], EV_ABS, ABS_X) && has_bit (&inputs[i], EV_ABS, ABS_Y))
        tablet = &inputs[i];
      else if (has_bit (&inputs[i], EV_KEY, KEY_A))
        kbd = &inputs[i];
    }
  if (!kbd || !tablet)
    guest_fail ("need a keyboard and a tablet (found %s, %s)", kbd ? "keyboard" : "-",
                tablet ? "tablet" : "-");
  kbd->role = "keyboard";
  tablet->role = "tablet";

  printf ("keyboard: found\n");
  printf ("keyboard: keys esc 1 a enter leftshift: %s\n",
          has_bit (kbd, EV_KEY, KEY_ESC) && has_bit (kbd, EV_KEY, KEY_1)
          && has_bit (kbd, EV_KEY, KEY_A) && has_bit (kbd, EV_KEY, KEY_ENTER)
          && has_bit (kbd, EV_KEY, KEY_LEFTSHIFT) ? "yes" : "no");
  printf ("keyboard: abs bits: %s\n", count_bits (kbd, EV_ABS) ? "yes" : "no");
  printf ("tablet: found\n");
  abs_info (tablet, ABS_X, "x");
  abs_info (tablet, ABS_Y, "y");
  printf ("tablet: buttons left right middle: %s\n",
          has_bit (tablet, EV_KEY, BTN_LEFT) && has_bit (tablet, EV_KEY, BTN_RIGHT)
          && has_bit (tablet, EV_KEY, BTN_MIDDLE) ? "yes" : "no");
  printf ("tablet: wheel: %s\n", has_bit (tablet, EV_REL, REL_WHEEL) ? "yes" : "no");

  for (int i = 0; i < 2; i++)
    {
      virtio_driver_ok (&inputs[i].dev);
      virtq_kick (inputs[i].eventq);
    }
  vqs[0] = kbd->eventq;
  vqs[1] = tablet->eventq;
  printf ("ready\n");

  for (;;)
    {
      if (!virtq_wait_any (vqs, 2, TIMEOUT_MS))
        guest_fail ("timeout: no input events (%u so far)", events);
      for (int d = 0; d < 2; d++)
        {
          Input *in = d == 0 ? kbd : tablet;
          InputEvent *ev;
          uint32_t len;

          while ((ev = virtq_get_used (in->eventq, &len)))
            {
              InputEvent e = *ev;

              if (len != sizeof e)
                guest_fail ("%s: event of %u bytes", in->role, len);
              events++;
              printf ("event %s %u %u %d\n", in->role, e.type, e.code, (int32_t) e.value);
              post (in, ev);
              virtq_kick (in->eventq);
              if (in == kbd && e.type == EV_KEY && e.code == KEY_ESC && e.value == 0)
                esc_released = true;
              if (in == kbd && esc_released && e.type == EV_SYN)
                {
                  bool irq_ok = mode != VIRTIO_IRQ_POLL
                                && virtq_wait_irq (kbd->eventq, 1000)
                                && virtq_wait_irq (tablet->eventq, 1000);

                  printf ("info: %u events; interrupts: keyboard %u, tablet %u\n", events,
                          kbd->eventq->irqs, tablet->eventq->irqs);
                  if (mode != VIRTIO_IRQ_POLL)
                    {
                      if (!irq_ok)
                        guest_fail ("no %s interrupt from one of the devices",
                                    virtio_irq_mode_name (mode));
                      printf ("interrupts: ok\n");
                    }
                  return 0;
                }
            }
        }
    }
}
