/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * ACPI fixed hardware at VR_ACPI_PM_BASE:
 *   +0x00 PM1a_STS (W1C)  +0x02 PM1a_EN  +0x04 PM1a_CNT  +0x08 PM_TMR (24-bit, read-only)
 *   +0x20 GPE0_STS (W1C)  +0x22 GPE0_EN
 * Any byte/word/dword access at any offset works; unused bytes read 0.
 *
 * ACPI mode is always on: SCI_EN reads 1 and the FADT has no SMI command port. Writing
 * SLP_EN with SLP_TYP = VR_ACPI_S5_TYP powers off; other sleep types are refused (the guest
 * only gets \_S5 from our DSDT). TMR_STS is raised lazily (when the status is read) each
 * time bit 23 of the timer flips; no SCI is generated for it. The SCI (GSI 9, level) is
 * the OR of the enabled status bits.
 *
 * Locking: `lock` protects the registers.
 */

#include "config.h"

#include "hw.h"
#include "state.h"

#include <string.h>

#define PM1_STS       0x00
#define PM1_EN        0x02
#define PM1_CNT       0x04
#define PM_TMR        0x08
#define GPE0_STS      0x20
#define GPE0_EN       0x22

#define STS_TMR       0x0001
#define STS_BM        0x0010
#define STS_GBL       0x0020
#define STS_PWRBTN    0x0100
#define STS_SLPBTN    0x0200
#define STS_RTC       0x0400
#define STS_WAK       0x8000
#define STS_MASK      (STS_TMR | STS_BM | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC | STS_WAK)
#define EN_MASK       (STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC)

#define CNT_SCI_EN    0x0001
#define CNT_BM_RLD    0x0002
#define CNT_GBL_RLS   0x0004
#define CNT_SLP_TYP   0x1c00
#define CNT_SLP_EN    0x2000

#define PM_TIMER_HZ   3579545ull

typedef struct
{
  VrDevice    parent;
  GMutex      lock;
  VrBus      *pio;
  VrIrqChip  *irq;
  VrMachine  *machine;

  uint16_t    pm1_sts;
  uint16_t    pm1_en;
  uint16_t    pm1_cnt;
  uint16_t    gpe0_sts;
  uint16_t    gpe0_en;
  uint32_t    tmr_epoch;    /* timer >> 23 when TMR_STS was last accounted */
  uint32_t    tmr_offset;   /* added to the host's ticks: a restored timer goes on from its
                             * saved value */
  bool        sci_level;
} VrAcpiPm;

static uint32_t
host_ticks (void)
{
  uint64_t us = (uint64_t) g_get_monotonic_time ();
  uint64_t ticks = (us / G_USEC_PER_SEC) * PM_TIMER_HZ
                   + (us % G_USEC_PER_SEC) * PM_TIMER_HZ / G_USEC_PER_SEC;

  return (uint32_t) ticks;
}

/* The 32-bit count of which the guest sees the low 24 bits. */
static uint32_t
pm_timer (VrAcpiPm *s)
{
  return host_ticks () + s->tmr_offset;
}

static bool
pm_compute_sci (VrAcpiPm *s)
{
  return (s->pm1_sts & s->pm1_en) || (s->gpe0_sts & s->gpe0_en);
}

static void
pm_update_sci (VrAcpiPm *s)
{
  bool level = pm_compute_sci (s);

  if (level != s->sci_level)
    {
      s->sci_level = level;
      if (s->irq)
        vr_irq_set_level (s->irq, VR_ACPI_SCI_IRQ, level);
    }
}

static void
pm_account_timer (VrAcpiPm *s)
{
  uint32_t epoch = (pm_timer (s) >> 23) & 0x1ff;

  if (epoch != s->tmr_epoch)
    {
      s->tmr_epoch = epoch;
      s->pm1_sts |= STS_TMR;
    }
}

static void
pm_write_cnt (VrAcpiPm *s, uint16_t val)
{
  unsigned typ = (val & CNT_SLP_TYP) >> 10;

  /* SCI_EN is fixed at 1; GBL_RLS and SLP_EN are write-only. */
  s->pm1_cnt = CNT_SCI_EN | (val & (CNT_BM_RLD | CNT_SLP_TYP));
  if (val & CNT_SLP_EN)
    {
      if (!s->machine)
        return;
      if (typ == VR_ACPI_S5_TYP)
        vr_machine_request_power_off (s->machine);
      else
        vr_machine_log_guest_error (s->machine, "acpi-pm", "sleep type %u is not supported",
                                    typ);
    }
}

/* The 16-bit register at @reg, for reading. */
static uint32_t
pm_read_reg (VrAcpiPm *s, unsigned reg)
{
  switch (reg)
    {
    case PM1_STS:
      pm_account_timer (s);
      return s->pm1_sts;
    case PM1_EN:
      return s->pm1_en;
    case PM1_CNT:
      return s->pm1_cnt;
    case PM_TMR:
      return pm_timer (s) & 0xffffff;
    case GPE0_STS:
      return s->gpe0_sts;
    case GPE0_EN:
      return s->gpe0_en;
    default:
      return 0;
    }
}

static unsigned
pm_reg_size (unsigned reg)
{
  return reg == PM_TMR ? 4 : 2;
}

static void
pm_write_reg (VrAcpiPm *s, unsigned reg, uint32_t val, uint32_t mask)
{
  switch (reg)
    {
    case PM1_STS:
      pm_account_timer (s);
      s->pm1_sts &= ~(val & mask & STS_MASK);
      break;
    case PM1_EN:
      s->pm1_en = (uint16_t) (((s->pm1_en & ~mask) | (val & mask)) & EN_MASK);
      break;
    case PM1_CNT:
      pm_write_cnt (s, (uint16_t) ((s->pm1_cnt & ~mask) | (val & mask)));
      break;
    case GPE0_STS:
      s->gpe0_sts &= ~(val & mask);
      break;
    case GPE0_EN:
      s->gpe0_en = (uint16_t) ((s->gpe0_en & ~mask) | (val & mask));
      break;
    default:
      break;  /* PM_TMR and reserved bytes are read-only */
    }
}

static void
acpi_pm_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  static const unsigned regs[] = { PM1_STS, PM1_EN, PM1_CNT, PM_TMR, GPE0_STS, GPE0_EN };
  VrAcpiPm *s = opaque;

  if (offset >= VR_ACPI_PM_SIZE || len > VR_ACPI_PM_SIZE - offset)
    {
      if (!is_write)
        memset (data, 0xff, len);
      return;
    }

  g_mutex_lock (&s->lock);
  if (!is_write)
    memset (data, 0, len);

  /* Each register the access overlaps, with the bytes of it that it covers. */
  for (unsigned r = 0; r < G_N_ELEMENTS (regs); r++)
    {
      unsigned reg = regs[r];
      unsigned size = pm_reg_size (reg);
      uint64_t lo = MAX (offset, reg);
      uint64_t hi = MIN (offset + len, reg + size);
      uint32_t val = 0;
      uint32_t mask = 0;

      if (lo >= hi)
        continue;

      if (is_write)
        {
          for (uint64_t a = lo; a < hi; a++)
            {
              val |= (uint32_t) data[a - offset] << (8 * (a - reg));
              mask |= 0xffu << (8 * (a - reg));
            }
          pm_write_reg (s, reg, val, mask);
        }
      else
        {
          val = pm_read_reg (s, reg);
          for (uint64_t a = lo; a < hi; a++)
            data[a - offset] = (uint8_t) (val >> (8 * (a - reg)));
        }
    }

  pm_update_sci (s);
  g_mutex_unlock (&s->lock);
}

void
vr_acpi_pm_power_button (VrDevice *dev)
{
  VrAcpiPm *s = (VrAcpiPm *) dev;

  g_return_if_fail (dev != NULL);

  g_mutex_lock (&s->lock);
  s->pm1_sts |= STS_PWRBTN;
  pm_update_sci (s);
  g_mutex_unlock (&s->lock);
}

static void
acpi_pm_reset_locked (VrAcpiPm *s)
{
  s->pm1_sts = 0;
  s->pm1_en = 0;
  s->pm1_cnt = CNT_SCI_EN;
  s->gpe0_sts = 0;
  s->gpe0_en = 0;
  s->tmr_epoch = (pm_timer (s) >> 23) & 0x1ff;
  pm_update_sci (s);
}

static void
acpi_pm_reset (VrDevice *dev)
{
  VrAcpiPm *s = (VrAcpiPm *) dev;

  g_mutex_lock (&s->lock);
  acpi_pm_reset_locked (s);
  g_mutex_unlock (&s->lock);
}

/* Snapshot state, version 1: (version, PM1_STS, PM1_EN, PM1_CNT, GPE0_STS, GPE0_EN, the PM
 * timer's 32-bit count, its bits 23-31 when TMR_STS was last accounted). The timer goes on
 * from the saved count, like the guest's clocks that the snapshot restores. */
#define ACPI_PM_STATE_VERSION 1
#define ACPI_PM_STATE_TYPE    "(qqqqqquu)"

static GVariant *
acpi_pm_save (VrDevice *dev)
{
  VrAcpiPm *s = (VrAcpiPm *) dev;
  GVariant *v;

  g_mutex_lock (&s->lock);
  v = g_variant_new (ACPI_PM_STATE_TYPE, ACPI_PM_STATE_VERSION, s->pm1_sts, s->pm1_en,
                     s->pm1_cnt, s->gpe0_sts, s->gpe0_en, pm_timer (s), s->tmr_epoch);
  g_mutex_unlock (&s->lock);
  return v;
}

static bool
acpi_pm_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrAcpiPm *s = (VrAcpiPm *) dev;
  uint16_t version, sts, en, cnt, gsts, gen;
  uint32_t timer, epoch;

  if (!vr_state_check (state, "acpi-pm", ACPI_PM_STATE_TYPE, ACPI_PM_STATE_VERSION, error))
    return false;
  g_variant_get (state, ACPI_PM_STATE_TYPE, &version, &sts, &en, &cnt, &gsts, &gen, &timer,
                 &epoch);
  if (sts & ~STS_MASK)
    return vr_state_fail (error, "acpi-pm", "PM1_STS %#x has reserved bits", sts);
  if (en & ~EN_MASK)
    return vr_state_fail (error, "acpi-pm", "PM1_EN %#x has reserved bits", en);
  if (cnt != (CNT_SCI_EN | (cnt & (CNT_BM_RLD | CNT_SLP_TYP))))
    return vr_state_fail (error, "acpi-pm", "PM1_CNT %#x (SCI_EN is always set, SLP_EN and "
                          "GBL_RLS never stored)", cnt);
  if (epoch > 0x1ff)
    return vr_state_fail (error, "acpi-pm", "timer epoch %#x (9 bits)", epoch);

  g_mutex_lock (&s->lock);
  s->pm1_sts = sts;
  s->pm1_en = en;
  s->pm1_cnt = cnt;
  s->gpe0_sts = gsts;
  s->gpe0_en = gen;
  s->tmr_offset = timer - host_ticks ();
  s->tmr_epoch = epoch;
  s->sci_level = pm_compute_sci (s);
  if (s->irq)
    vr_irq_restore_level (s->irq, VR_ACPI_SCI_IRQ, s->sci_level);
  g_mutex_unlock (&s->lock);
  return true;
}

static void
acpi_pm_destroy (VrDevice *dev)
{
  VrAcpiPm *s = (VrAcpiPm *) dev;

  vr_bus_unregister (s->pio, VR_ACPI_PM_BASE);
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps acpi_pm_ops = {
  .name = "acpi-pm",
  .reset = acpi_pm_reset,
  .save = acpi_pm_save,
  .load = acpi_pm_load,
  .destroy = acpi_pm_destroy,
};

VrDevice *
vr_acpi_pm_new (VrBus      *pio,
                VrIrqChip  *irq,
                VrMachine  *machine,
                GError    **error)
{
  VrAcpiPm *s;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrAcpiPm, 1);
  s->parent.ops = &acpi_pm_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->irq = irq;
  s->machine = machine;
  acpi_pm_reset_locked (s);

  if (!vr_bus_register (pio, VR_ACPI_PM_BASE, VR_ACPI_PM_SIZE, acpi_pm_io, s, "acpi-pm", error))
    {
      g_mutex_clear (&s->lock);
      g_free (s);
      return NULL;
    }
  return &s->parent;
}
