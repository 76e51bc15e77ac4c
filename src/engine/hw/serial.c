/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * 16550A UART.
 *
 * Transmission is instantaneous: a byte written to THR goes to the chardev (or, in loopback,
 * into the receive FIFO) at once, and THR/TSR are empty again when the write returns, with
 * a THRE interrupt pending as on real hardware. The receiver has the 16-byte FIFO with the
 * four trigger levels; the character-timeout interrupt (data below the trigger level, no
 * new byte for four character times) is reported as soon as data sits below the trigger,
 * which is what a guest would see with an idle line.
 *
 * Locking: `lock` protects every register. Guest accesses come from vCPU threads, input
 * from the I/O thread (through the chardev callbacks). vr_chardev_write() and
 * vr_irq_set_level() are called with `lock` held; the chardev never calls back into us
 * while we write, and vr_chardev_accept_input() only schedules work.
 */

#include "config.h"

#include "hw.h"
#include "state.h"

#include <string.h>

#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c
#define IIR_FIFO   0xc0

#define FCR_FE     0x01
#define FCR_RFR    0x02
#define FCR_XFR    0x04
#define FCR_DMA    0x08
#define FCR_ITL    0xc0

#define LCR_DLAB   0x80

#define MCR_DTR    0x01
#define MCR_RTS    0x02
#define MCR_OUT1   0x04
#define MCR_OUT2   0x08
#define MCR_LOOP   0x10

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_PE     0x04
#define LSR_FE     0x08
#define LSR_BI     0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_RFE    0x80
#define LSR_INT_ANY (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80
#define MSR_DELTA  0x0f

#define RX_FIFO_SIZE 16

typedef struct
{
  VrDevice      parent;
  GMutex        lock;
  VrBus        *pio;
  uint16_t      base;
  VrIrqChip    *irq;
  unsigned      gsi;
  VrChardev    *chr;

  uint8_t       ier;
  uint8_t       iir;
  uint8_t       fcr;
  uint8_t       lcr;
  uint8_t       mcr;
  uint8_t       lsr;
  uint8_t       msr;
  uint8_t       scr;
  uint8_t       dll;
  uint8_t       dlm;
  bool          thr_ipending;
  bool          irq_level;
  bool          input_blocked;   /* we told the chardev we were full */

  uint8_t       rx[RX_FIFO_SIZE];
  unsigned      rx_head;
  unsigned      rx_count;
} VrSerial;

static unsigned
rx_trigger (VrSerial *s)
{
  static const unsigned levels[4] = { 1, 4, 8, 14 };

  return levels[(s->fcr & FCR_ITL) >> 6];
}

static unsigned
rx_capacity (VrSerial *s)
{
  return (s->fcr & FCR_FE) ? RX_FIFO_SIZE : 1;
}

/* Recomputes IIR; returns the level the interrupt line should have. */
static bool
serial_compute_irq (VrSerial *s)
{
  uint8_t id = IIR_NO_INT;

  if ((s->ier & IER_RLSI) && (s->lsr & LSR_INT_ANY))
    id = IIR_RLSI;
  else if ((s->ier & IER_RDI) && (s->lsr & LSR_DR))
    {
      if (!(s->fcr & FCR_FE) || s->rx_count >= rx_trigger (s))
        id = IIR_RDI;
      else
        id = IIR_CTI;
    }
  else if ((s->ier & IER_THRI) && s->thr_ipending)
    id = IIR_THRI;
  else if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA))
    id = IIR_MSI;

  s->iir = id | ((s->fcr & FCR_FE) ? IIR_FIFO : 0);
  return !(id & IIR_NO_INT);
}

static void
serial_update_irq (VrSerial *s)
{
  bool level = serial_compute_irq (s);

  if (level != s->irq_level)
    {
      s->irq_level = level;
      if (s->irq)
        vr_irq_set_level (s->irq, s->gsi, level);
    }
}

static void
rx_clear (VrSerial *s)
{
  s->rx_head = 0;
  s->rx_count = 0;
  s->lsr &= ~(LSR_DR | LSR_BI | LSR_RFE);
}

static void
rx_push (VrSerial *s, uint8_t byte)
{
  if (s->rx_count >= rx_capacity (s))
    {
      s->lsr |= LSR_OE;
      return;
    }
  s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
  s->rx_count++;
  s->lsr |= LSR_DR;
}

static uint8_t
rx_pop (VrSerial *s)
{
  uint8_t byte = 0;

  if (s->rx_count > 0)
    {
      byte = s->rx[s->rx_head];
      s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
      s->rx_count--;
    }
  if (s->rx_count == 0)
    s->lsr &= ~(LSR_DR | LSR_BI);
  return byte;
}

/* The modem status inputs: in loopback they follow MCR, else the line is always ready. */
static void
serial_update_msr (VrSerial *s)
{
  uint8_t lines;
  uint8_t old = s->msr;

  if (s->mcr & MCR_LOOP)
    lines = ((s->mcr & MCR_RTS) ? MSR_CTS : 0)
            | ((s->mcr & MCR_DTR) ? MSR_DSR : 0)
            | ((s->mcr & MCR_OUT1) ? MSR_RI : 0)
            | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
  else
    lines = MSR_DCD | MSR_DSR | MSR_CTS;

  s->msr = (s->msr & MSR_DELTA) | lines;
  if ((old ^ lines) & MSR_CTS)
    s->msr |= MSR_DCTS;
  if ((old ^ lines) & MSR_DSR)
    s->msr |= MSR_DDSR;
  if ((old ^ lines) & MSR_DCD)
    s->msr |= MSR_DDCD;
  if ((old & MSR_RI) && !(lines & MSR_RI))
    s->msr |= MSR_TERI;
}

static void
serial_maybe_resume_input (VrSerial *s)
{
  if (s->input_blocked && s->chr && !(s->mcr & MCR_LOOP) && s->rx_count < rx_capacity (s))
    {
      s->input_blocked = false;
      vr_chardev_accept_input (s->chr);
    }
}

static void
serial_write_fcr (VrSerial *s, uint8_t val)
{
  /* Toggling the FIFO enable clears both FIFOs. */
  if ((val ^ s->fcr) & FCR_FE)
    val |= FCR_RFR | FCR_XFR;

  if (val & FCR_RFR)
    rx_clear (s);
  if (val & FCR_XFR)
    {
      /* The transmit FIFO is always empty here; clearing it re-arms THRE. */
      s->lsr |= LSR_THRE | LSR_TEMT;
      s->thr_ipending = true;
    }
  /* Keep enable, DMA mode and trigger level; bit 5 (64-byte FIFO) does not exist here. */
  s->fcr = val & (FCR_FE | FCR_DMA | FCR_ITL);
  if (!(s->fcr & FCR_FE) && s->rx_count > 1)
    rx_clear (s);
}

static void
serial_transmit (VrSerial *s, uint8_t byte)
{
  s->thr_ipending = false;
  s->lsr &= ~(LSR_THRE | LSR_TEMT);

  if (s->mcr & MCR_LOOP)
    rx_push (s, byte);
  else if (s->chr)
    vr_chardev_write (s->chr, &byte, 1);

  s->lsr |= LSR_THRE | LSR_TEMT;
  s->thr_ipending = true;
}

static void
serial_write (VrSerial *s, unsigned reg, uint8_t val)
{
  switch (reg)
    {
    case UART_RBR:
      if (s->lcr & LCR_DLAB)
        s->dll = val;
      else
        serial_transmit (s, val);
      break;

    case UART_IER:
      if (s->lcr & LCR_DLAB)
        s->dlm = val;
      else
        {
          uint8_t changed = (s->ier ^ val) & 0x0f;

          s->ier = val & 0x0f;
          /* Enabling THRI with THR empty (re)raises THRE, as real 16550s and Windows expect. */
          if (changed & IER_THRI)
            s->thr_ipending = (s->ier & IER_THRI) && (s->lsr & LSR_THRE);
        }
      break;

    case UART_IIR:
      /* Clearing or enabling the FIFO makes room: input held back (typed before the guest set
       * the port up) must flow again, or it would wait for a read that never comes. */
      serial_write_fcr (s, val);
      serial_maybe_resume_input (s);
      break;

    case UART_LCR:
      s->lcr = val;
      break;

    case UART_MCR:
      {
        bool was_loop = s->mcr & MCR_LOOP;

        s->mcr = val & 0x1f;
        serial_update_msr (s);
        if (was_loop && !(s->mcr & MCR_LOOP))
          serial_maybe_resume_input (s);
      }
      break;

    case UART_LSR:
      /* Read-only on a 16550A (factory test only). */
      break;

    case UART_MSR:
      /* Read-only. */
      break;

    case UART_SCR:
      s->scr = val;
      break;

    default:
      g_assert_not_reached ();
    }
}

static uint8_t
serial_read (VrSerial *s, unsigned reg)
{
  uint8_t val;

  switch (reg)
    {
    case UART_RBR:
      if (s->lcr & LCR_DLAB)
        return s->dll;
      val = rx_pop (s);
      serial_maybe_resume_input (s);
      return val;

    case UART_IER:
      return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;

    case UART_IIR:
      val = s->iir;
      /* Reading IIR while it reports THRE acknowledges that interrupt. */
      if ((val & 0x0f) == IIR_THRI)
        s->thr_ipending = false;
      return val;

    case UART_LCR:
      return s->lcr;

    case UART_MCR:
      return s->mcr;

    case UART_LSR:
      val = s->lsr;
      if (s->rx_count > 0 && (s->lsr & LSR_INT_ANY))
        val |= LSR_RFE;
      s->lsr &= ~(LSR_OE | LSR_PE | LSR_FE | LSR_BI | LSR_RFE);
      if (s->rx_count > 0)
        s->lsr |= LSR_DR;
      return val;

    case UART_MSR:
      val = s->msr;
      s->msr &= ~MSR_DELTA;
      return val;

    case UART_SCR:
      return s->scr;

    default:
      g_assert_not_reached ();
    }
}

static void
serial_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrSerial *s = opaque;

  /* Byte registers: a wider access touches consecutive registers, like on an ISA bus. */
  g_mutex_lock (&s->lock);
  for (uint32_t i = 0; i < len; i++)
    {
      uint64_t reg = offset + i;

      if (reg > UART_SCR)
        {
          if (!is_write)
            data[i] = 0xff;
          continue;
        }
      if (is_write)
        serial_write (s, (unsigned) reg, data[i]);
      else
        data[i] = serial_read (s, (unsigned) reg);
      serial_update_irq (s);
    }
  g_mutex_unlock (&s->lock);
}

/* Chardev callbacks, on the I/O thread. */
static size_t
serial_can_receive (void *opaque)
{
  VrSerial *s = opaque;
  size_t room = 0;

  g_mutex_lock (&s->lock);
  /* In loopback the receiver is disconnected from the line: hold input back. */
  if (!(s->mcr & MCR_LOOP))
    room = rx_capacity (s) - MIN (s->rx_count, rx_capacity (s));
  if (room == 0)
    s->input_blocked = true;
  g_mutex_unlock (&s->lock);

  return room;
}

static void
serial_receive (void *opaque, const uint8_t *buf, size_t len)
{
  VrSerial *s = opaque;

  g_mutex_lock (&s->lock);
  for (size_t i = 0; i < len; i++)
    rx_push (s, buf[i]);
  serial_update_irq (s);
  g_mutex_unlock (&s->lock);
}

static void
serial_reset_locked (VrSerial *s)
{
  s->ier = 0;
  s->fcr = 0;
  s->lcr = 0;
  s->mcr = MCR_OUT2;
  s->lsr = LSR_THRE | LSR_TEMT;
  s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
  s->scr = 0;
  /* 115200 baud from the 1.8432 MHz clock. */
  s->dll = 0x01;
  s->dlm = 0x00;
  s->thr_ipending = false;
  rx_clear (s);
  serial_update_msr (s);
  s->msr &= ~MSR_DELTA;
  serial_update_irq (s);
  serial_maybe_resume_input (s);
}

static void
serial_reset (VrDevice *dev)
{
  VrSerial *s = (VrSerial *) dev;

  g_mutex_lock (&s->lock);
  serial_reset_locked (s);
  g_mutex_unlock (&s->lock);
}

/* Snapshot state, version 1: (version, IER, FCR, LCR, MCR, LSR, MSR, SCR, DLL, DLM, THRE
 * interrupt pending, receive FIFO oldest first). */
#define SERIAL_STATE_VERSION 1
#define SERIAL_STATE_TYPE    "(qyyyyyyyyyb@ay)"

static GVariant *
serial_save (VrDevice *dev)
{
  VrSerial *s = (VrSerial *) dev;
  GVariant *v;
  uint8_t fifo[RX_FIFO_SIZE];

  g_mutex_lock (&s->lock);
  for (unsigned i = 0; i < s->rx_count; i++)
    fifo[i] = s->rx[(s->rx_head + i) % RX_FIFO_SIZE];
  v = g_variant_new (SERIAL_STATE_TYPE, SERIAL_STATE_VERSION, s->ier, s->fcr, s->lcr, s->mcr,
                     s->lsr, s->msr, s->scr, s->dll, s->dlm, s->thr_ipending,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, fifo, s->rx_count, 1));
  g_mutex_unlock (&s->lock);

  return v;
}

/* The modem status lines (MSR bits 4-7) that @mcr implies; see serial_update_msr(). */
static uint8_t
msr_lines_for (uint8_t mcr)
{
  if (!(mcr & MCR_LOOP))
    return MSR_DCD | MSR_DSR | MSR_CTS;
  return ((mcr & MCR_RTS) ? MSR_CTS : 0) | ((mcr & MCR_DTR) ? MSR_DSR : 0)
         | ((mcr & MCR_OUT1) ? MSR_RI : 0) | ((mcr & MCR_OUT2) ? MSR_DCD : 0);
}

static bool
serial_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrSerial *s = (VrSerial *) dev;
  g_autoptr (GVariant) fifo = NULL;
  uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
  uint16_t version;
  gboolean thr_ipending;
  const uint8_t *bytes;
  gsize n;

  if (!vr_state_check (state, "serial", SERIAL_STATE_TYPE, SERIAL_STATE_VERSION, error))
    return false;
  g_variant_get (state, SERIAL_STATE_TYPE, &version, &ier, &fcr, &lcr, &mcr, &lsr, &msr, &scr,
                 &dll, &dlm, &thr_ipending, &fifo);
  bytes = g_variant_get_fixed_array (fifo, &n, 1);

  /* Only states the UART can be in. */
  if (ier & ~0x0f)
    return vr_state_fail (error, "serial", "IER %#x has reserved bits", ier);
  if (fcr & ~(FCR_FE | FCR_DMA | FCR_ITL))
    return vr_state_fail (error, "serial", "FCR %#x has bits that do not stick", fcr);
  if (mcr & ~0x1f)
    return vr_state_fail (error, "serial", "MCR %#x has reserved bits", mcr);
  if (n > ((fcr & FCR_FE) ? RX_FIFO_SIZE : 1u))
    return vr_state_fail (error, "serial", "%" G_GSIZE_FORMAT " received bytes, more than the "
                          "%s holds", n, (fcr & FCR_FE) ? "FIFO" : "receive buffer");
  if ((lsr & (LSR_THRE | LSR_TEMT)) != (LSR_THRE | LSR_TEMT) || (lsr & LSR_RFE)
      || !(lsr & LSR_DR) != (n == 0))
    return vr_state_fail (error, "serial", "LSR %#x does not match the transmitter (always "
                          "empty) or the %" G_GSIZE_FORMAT " received bytes", lsr, n);
  if ((msr & 0xf0) != msr_lines_for (mcr))
    return vr_state_fail (error, "serial", "MSR %#x does not match MCR %#x", msr, mcr);

  g_mutex_lock (&s->lock);
  s->ier = ier;
  s->fcr = fcr;
  s->lcr = lcr;
  s->mcr = mcr;
  s->lsr = lsr;
  s->msr = msr;
  s->scr = scr;
  s->dll = dll;
  s->dlm = dlm;
  s->thr_ipending = thr_ipending;
  s->rx_head = 0;
  s->rx_count = (unsigned) n;
  if (n)
    memcpy (s->rx, bytes, n);
  /* IIR and the line as after any access; the line is re-asserted at that level. */
  s->irq_level = serial_compute_irq (s);
  if (s->irq)
    vr_irq_restore_level (s->irq, s->gsi, s->irq_level);
  serial_maybe_resume_input (s);
  g_mutex_unlock (&s->lock);

  return true;
}

static void
serial_destroy (VrDevice *dev)
{
  VrSerial *s = (VrSerial *) dev;

  /* First, without our lock: no chardev callback runs after this. */
  vr_chardev_detach (s->chr);
  vr_bus_unregister (s->pio, s->base);
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps serial_ops = {
  .name = "serial",
  .reset = serial_reset,
  .save = serial_save,
  .load = serial_load,
  .destroy = serial_destroy,
};

VrDevice *
vr_serial_new (VrBus        *pio,
               uint16_t      base,
               VrIrqChip    *irq,
               unsigned      gsi,
               VrChardev    *chr,
               GMainContext *io_context,
               GError      **error)
{
  VrSerial *s;

  g_return_val_if_fail (pio != NULL, NULL);
  g_return_val_if_fail (gsi < VR_IRQ_NUM_GSI, NULL);

  s = g_new0 (VrSerial, 1);
  s->parent.ops = &serial_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->base = base;
  s->irq = irq;
  s->gsi = gsi;
  s->chr = chr;
  serial_reset_locked (s);

  if (!vr_bus_register (pio, base, 8, serial_io, s, "serial", error))
    {
      g_mutex_clear (&s->lock);
      g_free (s);
      return NULL;
    }

  if (chr)
    vr_chardev_attach (chr, io_context, serial_can_receive, serial_receive, s);

  return &s->parent;
}
