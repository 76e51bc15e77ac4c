/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * MC146818 CMOS real-time clock and its 128 bytes of NVRAM.
 *
 * Time: the guest's clock is the host's UTC wall clock plus an offset (microseconds). Reads
 * of the time registers compute the time on the spot; a write to a time register (or
 * clearing SET after writing them) moves the offset. While SET is 1 the registers hold
 * whatever the guest wrote and the clock does not update them.
 *
 * Flags: register C's PF/AF/UF are computed lazily, from the guest time of the last
 * evaluation to now, whenever C is read or the timer fires. The timer (a GSource on the I/O
 * thread's context) is armed only while an interrupt is enabled in register B and IRQF is
 * not already set, and never faster than 1024 Hz. IRQ 8 is raised with IRQF and lowered
 * when the guest reads C.
 *
 * NVRAM (0x0e-0x7f except the century byte 0x32) is plain memory and survives a machine
 * reset. The memory-size bytes are filled once at creation.
 *
 * Locking: `lock` protects everything; the timer callback takes it on the I/O thread.
 */

#include "config.h"

#include "hw.h"
#include "state.h"

#include <string.h>

#define REG_SEC          0x00
#define REG_SEC_ALARM    0x01
#define REG_MIN          0x02
#define REG_MIN_ALARM    0x03
#define REG_HOUR         0x04
#define REG_HOUR_ALARM   0x05
#define REG_WDAY         0x06
#define REG_MDAY         0x07
#define REG_MONTH        0x08
#define REG_YEAR         0x09
#define REG_A            0x0a
#define REG_B            0x0b
#define REG_C            0x0c
#define REG_D            0x0d
#define REG_CENTURY      0x32

#define A_UIP            0x80
#define A_DV_MASK        0x70
#define A_DV_NORMAL      0x20
#define A_RS_MASK        0x0f

#define B_SET            0x80
#define B_PIE            0x40
#define B_AIE            0x20
#define B_UIE            0x10
#define B_SQWE           0x08
#define B_DM             0x04
#define B_24H            0x02
#define B_DSE            0x01

#define C_IRQF           0x80
#define C_PF             0x40
#define C_AF             0x20
#define C_UF             0x10

#define D_VRT            0x80

#define USEC_PER_SEC     G_USEC_PER_SEC
#define UIP_USEC         244
#define MAX_PERIODIC_HZ  1024

typedef struct
{
  VrDevice      parent;
  GMutex        lock;
  VrBus        *pio;
  VrIrqChip    *irq;
  GSource      *timer;

  uint8_t       index;
  uint8_t       cmos[128];      /* NVRAM; time registers here are only used while SET=1 */
  int64_t       offset_us;      /* guest time = host real time + offset */
  int64_t       flags_time;     /* guest time (us) up to which C's flags are accounted */
  bool          irq_level;
} VrRtc;

static int64_t
rtc_now (VrRtc *s)
{
  return g_get_real_time () + s->offset_us;
}

static uint8_t
to_reg (VrRtc *s, int value)
{
  if (s->cmos[REG_B] & B_DM)
    return (uint8_t) value;
  return (uint8_t) (((value / 10) << 4) | (value % 10));
}

/* -1 when the register holds no valid number. */
static int
from_reg (VrRtc *s, uint8_t value)
{
  if (s->cmos[REG_B] & B_DM)
    return value;
  if ((value & 0x0f) > 9 || (value >> 4) > 9)
    return -1;
  return (value >> 4) * 10 + (value & 0x0f);
}

static uint8_t
hour_to_reg (VrRtc *s, int hour)
{
  if (s->cmos[REG_B] & B_24H)
    return to_reg (s, hour);
  {
    int h12 = hour % 12 == 0 ? 12 : hour % 12;
    return to_reg (s, h12) | (hour >= 12 ? 0x80 : 0);
  }
}

static int
hour_from_reg (VrRtc *s, uint8_t value)
{
  int h;

  if (s->cmos[REG_B] & B_24H)
    return from_reg (s, value);
  h = from_reg (s, value & 0x7f);
  if (h < 1 || h > 12)
    return -1;
  return (h % 12) + ((value & 0x80) ? 12 : 0);
}

/* Writes the time registers for guest time @t (microseconds). */
static void
rtc_fill_time (VrRtc *s, int64_t t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t / USEC_PER_SEC);
  int year;

  if (!dt)
    return;
  year = g_date_time_get_year (dt);
  s->cmos[REG_SEC] = to_reg (s, g_date_time_get_second (dt));
  s->cmos[REG_MIN] = to_reg (s, g_date_time_get_minute (dt));
  s->cmos[REG_HOUR] = hour_to_reg (s, g_date_time_get_hour (dt));
  s->cmos[REG_WDAY] = to_reg (s, g_date_time_get_day_of_week (dt) % 7 + 1);
  s->cmos[REG_MDAY] = to_reg (s, g_date_time_get_day_of_month (dt));
  s->cmos[REG_MONTH] = to_reg (s, g_date_time_get_month (dt));
  s->cmos[REG_YEAR] = to_reg (s, year % 100);
  s->cmos[REG_CENTURY] = to_reg (s, year / 100);
}

/* Sets the offset so that the guest's clock reads the time registers now. */
static void
rtc_apply_time (VrRtc *s)
{
  g_autoptr (GDateTime) dt = NULL;
  int sec = from_reg (s, s->cmos[REG_SEC]);
  int min = from_reg (s, s->cmos[REG_MIN]);
  int hour = hour_from_reg (s, s->cmos[REG_HOUR]);
  int mday = from_reg (s, s->cmos[REG_MDAY]);
  int month = from_reg (s, s->cmos[REG_MONTH]);
  int year = from_reg (s, s->cmos[REG_YEAR]);
  int century = from_reg (s, s->cmos[REG_CENTURY]);

  if (sec < 0 || sec > 59 || min < 0 || min > 59 || hour < 0 || hour > 23 || mday < 1
      || month < 1 || month > 12 || year < 0 || year > 99 || century < 0)
    return;  /* nonsense: the clock keeps its time */
  if (century < 1 || century > 99)
    century = year < 70 ? 20 : 19;

  dt = g_date_time_new_utc (century * 100 + year, month, mday, hour, min, sec);
  if (!dt)
    return;
  s->offset_us = g_date_time_to_unix (dt) * USEC_PER_SEC - g_get_real_time ();
  s->flags_time = rtc_now (s);
}

static int64_t
rtc_period_us (VrRtc *s)
{
  unsigned rs = s->cmos[REG_A] & A_RS_MASK;
  int64_t hz;

  if (rs == 0)
    return 0;
  if (rs <= 2)
    hz = 256 >> (rs - 1);
  else
    hz = 32768 >> (rs - 1);
  return USEC_PER_SEC / hz;
}

static bool
rtc_running (VrRtc *s)
{
  return !(s->cmos[REG_B] & B_SET) && (s->cmos[REG_A] & A_DV_MASK) == A_DV_NORMAL;
}

/* Does guest second @t_sec match the alarm? "Don't care" is 0xc0-0xff. */
static bool
rtc_alarm_matches (VrRtc *s, int64_t t_sec)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t_sec);
  uint8_t a;

  if (!dt)
    return false;
  a = s->cmos[REG_SEC_ALARM];
  if ((a & 0xc0) != 0xc0 && from_reg (s, a) != g_date_time_get_second (dt))
    return false;
  a = s->cmos[REG_MIN_ALARM];
  if ((a & 0xc0) != 0xc0 && from_reg (s, a) != g_date_time_get_minute (dt))
    return false;
  a = s->cmos[REG_HOUR_ALARM];
  if ((a & 0xc0) != 0xc0 && hour_from_reg (s, a) != g_date_time_get_hour (dt))
    return false;
  return true;
}

/* Accounts the events between flags_time and now into register C. */
static void
rtc_update_flags (VrRtc *s)
{
  int64_t now = rtc_now (s);
  int64_t last = s->flags_time;
  int64_t period = rtc_period_us (s);

  if (now <= last)
    return;

  if (period > 0 && (s->cmos[REG_A] & A_DV_MASK) == A_DV_NORMAL
      && now / period != last / period)
    s->cmos[REG_C] |= C_PF;

  if (rtc_running (s) && now / USEC_PER_SEC != last / USEC_PER_SEC)
    {
      s->cmos[REG_C] |= C_UF;
      /* The alarm is checked at the last update; a long gap only checks that one. */
      if (rtc_alarm_matches (s, now / USEC_PER_SEC))
        s->cmos[REG_C] |= C_AF;
    }
  s->flags_time = now;
}

/* Sets IRQF when an enabled flag is up; returns the level IRQ 8 should have. */
static bool
rtc_compute_irq (VrRtc *s)
{
  uint8_t enabled = s->cmos[REG_B] & (B_PIE | B_AIE | B_UIE);

  /* PF/AF/UF line up with PIE/AIE/UIE. */
  if (s->cmos[REG_C] & enabled & (C_PF | C_AF | C_UF))
    s->cmos[REG_C] |= C_IRQF;
  return s->cmos[REG_C] & C_IRQF;
}

static void
rtc_update_irq (VrRtc *s)
{
  bool level = rtc_compute_irq (s);

  if (level != s->irq_level)
    {
      s->irq_level = level;
      if (s->irq)
        vr_irq_set_level (s->irq, VR_RTC_IRQ, level);
    }
}

/* Arms the timer for the next interesting event, or disarms it. */
static void
rtc_arm_timer (VrRtc *s)
{
  uint8_t b = s->cmos[REG_B];
  int64_t now;
  int64_t delay = -1;

  if (!s->timer)
    return;

  if (!(s->cmos[REG_C] & C_IRQF))
    {
      now = rtc_now (s);
      if ((b & B_PIE) && rtc_period_us (s) > 0)
        {
          int64_t period = MAX (rtc_period_us (s), USEC_PER_SEC / MAX_PERIODIC_HZ);
          delay = period - now % period;
        }
      if ((b & (B_AIE | B_UIE)) && rtc_running (s))
        {
          int64_t to_second = USEC_PER_SEC - now % USEC_PER_SEC;
          delay = delay < 0 ? to_second : MIN (delay, to_second);
        }
    }

  if (delay < 0)
    g_source_set_ready_time (s->timer, -1);
  else
    g_source_set_ready_time (s->timer, g_get_monotonic_time () + MAX (delay, 1));
}

/* The timer source keeps its own pointer to the device under its own lock, so that a
 * dispatch racing with rtc_destroy() on another thread sees NULL instead of freed memory.
 * Order: source lock, then the device's lock. */
typedef struct
{
  GSource  source;
  GMutex   lock;
  VrRtc   *rtc;
} RtcTimerSource;

static gboolean
rtc_timer_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  RtcTimerSource *ts = (RtcTimerSource *) source;
  VrRtc *s;

  g_mutex_lock (&ts->lock);
  s = ts->rtc;
  g_source_set_ready_time (source, -1);
  if (s)
    {
      g_mutex_lock (&s->lock);
      rtc_update_flags (s);
      rtc_update_irq (s);
      rtc_arm_timer (s);
      g_mutex_unlock (&s->lock);
    }
  g_mutex_unlock (&ts->lock);

  return G_SOURCE_CONTINUE;
}

static void
rtc_timer_finalize (GSource *source)
{
  RtcTimerSource *ts = (RtcTimerSource *) source;

  g_mutex_clear (&ts->lock);
}

static const GSourceFuncs rtc_timer_funcs = {
  .dispatch = rtc_timer_dispatch,
  .finalize = rtc_timer_finalize,
};

static uint8_t
rtc_read (VrRtc *s, uint8_t reg)
{
  uint8_t val;

  switch (reg)
    {
    case REG_SEC:
    case REG_MIN:
    case REG_HOUR:
    case REG_WDAY:
    case REG_MDAY:
    case REG_MONTH:
    case REG_YEAR:
    case REG_CENTURY:
      if (rtc_running (s))
        rtc_fill_time (s, rtc_now (s));
      return s->cmos[reg];

    case REG_A:
      val = s->cmos[REG_A] & ~A_UIP;
      if (rtc_running (s) && rtc_now (s) % USEC_PER_SEC >= USEC_PER_SEC - UIP_USEC)
        val |= A_UIP;
      return val;

    case REG_C:
      rtc_update_flags (s);
      rtc_update_irq (s);
      val = s->cmos[REG_C];
      s->cmos[REG_C] = 0;
      rtc_update_irq (s);
      rtc_arm_timer (s);
      return val;

    case REG_D:
      return D_VRT;

    default:
      return s->cmos[reg];
    }
}

static void
rtc_write (VrRtc *s, uint8_t reg, uint8_t val)
{
  switch (reg)
    {
    case REG_SEC:
    case REG_MIN:
    case REG_HOUR:
    case REG_WDAY:
    case REG_MDAY:
    case REG_MONTH:
    case REG_YEAR:
    case REG_CENTURY:
      if (rtc_running (s))
        {
          /* A write while running moves the clock at once (as QEMU does). */
          rtc_fill_time (s, rtc_now (s));
          s->cmos[reg] = val;
          rtc_apply_time (s);
        }
      else
        s->cmos[reg] = val;
      break;

    case REG_SEC_ALARM:
    case REG_MIN_ALARM:
    case REG_HOUR_ALARM:
      s->cmos[reg] = val;
      rtc_arm_timer (s);
      break;

    case REG_A:
      {
        bool was_running = rtc_running (s);

        rtc_update_flags (s);
        s->cmos[REG_A] = val & ~A_UIP;
        if (was_running && !rtc_running (s))
          rtc_fill_time (s, rtc_now (s));
        else if (!was_running && rtc_running (s))
          rtc_apply_time (s);
        rtc_arm_timer (s);
      }
      break;

    case REG_B:
      {
        bool was_running = rtc_running (s);
        uint8_t old = s->cmos[REG_B];

        rtc_update_flags (s);
        if (val & B_SET)
          val &= ~B_UIE;  /* setting SET clears UIE */
        if (was_running && (val & B_SET))
          rtc_fill_time (s, rtc_now (s));
        /* The time registers follow a change of format. */
        if (!(val & B_SET) && ((old ^ val) & (B_DM | B_24H)))
          {
            s->cmos[REG_B] = val;
            if (was_running)
              rtc_fill_time (s, rtc_now (s));
          }
        s->cmos[REG_B] = val;
        if (!was_running && rtc_running (s))
          rtc_apply_time (s);
        rtc_update_irq (s);
        rtc_arm_timer (s);
      }
      break;

    case REG_C:
    case REG_D:
      break;  /* read-only */

    default:
      s->cmos[reg] = val;
      break;
    }
}

static void
rtc_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
  VrRtc *s = opaque;

  if (len != 1 && !is_write)
    memset (data, 0xff, len);

  g_mutex_lock (&s->lock);
  if (offset == 0)
    {
      /* Index port; bit 7 is the NMI mask (ignored). Reads see nothing. */
      if (is_write)
        s->index = data[0] & 0x7f;
      else
        data[0] = 0xff;
    }
  else if (offset == 1)
    {
      if (is_write)
        rtc_write (s, s->index, data[0]);
      else
        data[0] = rtc_read (s, s->index);
    }
  g_mutex_unlock (&s->lock);
}

static void
rtc_set_word (VrRtc *s, uint8_t reg, uint16_t value)
{
  s->cmos[reg] = value & 0xff;
  s->cmos[reg + 1] = value >> 8;
}

static void
rtc_fill_memory (VrRtc *s, VrMemory *memory)
{
  uint64_t low = memory ? vr_memory_low_size (memory) : 0;
  uint64_t high = memory ? vr_memory_high_size (memory) : 0;
  uint64_t ext = low > (1u << 20) ? (low - (1u << 20)) / 1024 : 0;
  uint64_t above16 = low > (16u << 20) ? (low - (16u << 20)) / 65536 : 0;
  uint64_t above4g = high / 65536;

  rtc_set_word (s, 0x15, 640);
  rtc_set_word (s, 0x17, (uint16_t) MIN (ext, 0xffff));
  rtc_set_word (s, 0x30, (uint16_t) MIN (ext, 0xffff));
  rtc_set_word (s, 0x34, (uint16_t) MIN (above16, 0xffff));
  above4g = MIN (above4g, 0xffffff);
  s->cmos[0x5b] = above4g & 0xff;
  s->cmos[0x5c] = (above4g >> 8) & 0xff;
  s->cmos[0x5d] = (above4g >> 16) & 0xff;
}

static void
rtc_reset_locked (VrRtc *s)
{
  /* The RESET pin: interrupt enables and flags go, time and NVRAM stay. */
  rtc_update_flags (s);
  s->cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
  s->cmos[REG_C] = 0;
  s->index = 0;
  rtc_update_irq (s);
  rtc_arm_timer (s);
}

static void
rtc_reset (VrDevice *dev)
{
  VrRtc *s = (VrRtc *) dev;

  g_mutex_lock (&s->lock);
  rtc_reset_locked (s);
  g_mutex_unlock (&s->lock);
}

/* Snapshot state, version 1: (version, index register, guest clock offset from the host's
 * UTC in microseconds, the 128 bytes of CMOS). The clock goes on from the host's time after a
 * restore (as QEMU's default `-rtc clock=host`): guests see the wall-clock time. */
#define RTC_STATE_VERSION 1
#define RTC_STATE_TYPE    "(qyx@ay)"
#define RTC_MAX_OFFSET_US ((int64_t) 1 << 58)   /* ~9000 years */

static GVariant *
rtc_save (VrDevice *dev)
{
  VrRtc *s = (VrRtc *) dev;
  GVariant *v;

  g_mutex_lock (&s->lock);
  /* Flags up to now are in C, so that the restored clock does not count them twice. */
  rtc_update_flags (s);
  rtc_update_irq (s);
  v = g_variant_new (RTC_STATE_TYPE, RTC_STATE_VERSION, s->index, s->offset_us,
                     g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, s->cmos, sizeof s->cmos, 1));
  g_mutex_unlock (&s->lock);
  return v;
}

static bool
rtc_load (VrDevice *dev, GVariant *state, GError **error)
{
  VrRtc *s = (VrRtc *) dev;
  g_autoptr (GVariant) cmos = NULL;
  const uint8_t *bytes;
  uint16_t version;
  uint8_t index;
  int64_t offset;
  gsize n;

  if (!vr_state_check (state, "rtc", RTC_STATE_TYPE, RTC_STATE_VERSION, error))
    return false;
  g_variant_get (state, RTC_STATE_TYPE, &version, &index, &offset, &cmos);
  bytes = g_variant_get_fixed_array (cmos, &n, 1);
  if (n != sizeof s->cmos)
    return vr_state_fail (error, "rtc", "%" G_GSIZE_FORMAT " bytes of CMOS, expected %zu", n,
                          sizeof s->cmos);
  if (index & 0x80)
    return vr_state_fail (error, "rtc", "index register %#x (7 bits)", index);
  if (offset > RTC_MAX_OFFSET_US || offset < -RTC_MAX_OFFSET_US)
    return vr_state_fail (error, "rtc", "clock offset %" G_GINT64_FORMAT " microseconds", offset);
  if ((bytes[REG_A] & A_UIP) || (bytes[REG_C] & ~(C_IRQF | C_PF | C_AF | C_UF)))
    return vr_state_fail (error, "rtc", "register A %#x or C %#x has bits the clock never "
                          "stores", bytes[REG_A], bytes[REG_C]);

  g_mutex_lock (&s->lock);
  s->index = index;
  s->offset_us = offset;
  memcpy (s->cmos, bytes, sizeof s->cmos);
  s->flags_time = rtc_now (s);
  s->irq_level = rtc_compute_irq (s);
  if (s->irq)
    vr_irq_restore_level (s->irq, VR_RTC_IRQ, s->irq_level);
  rtc_arm_timer (s);
  g_mutex_unlock (&s->lock);
  return true;
}

static void
rtc_destroy (VrDevice *dev)
{
  VrRtc *s = (VrRtc *) dev;

  vr_bus_unregister (s->pio, VR_RTC_BASE);
  if (s->timer)
    {
      RtcTimerSource *ts = (RtcTimerSource *) s->timer;

      /* Waits for a dispatch in progress; later ones see NULL. */
      g_mutex_lock (&ts->lock);
      ts->rtc = NULL;
      g_mutex_unlock (&ts->lock);
      g_source_destroy (s->timer);
      g_clear_pointer (&s->timer, g_source_unref);
    }
  g_mutex_clear (&s->lock);
  g_free (s);
}

static const VrDeviceOps rtc_ops = {
  .name = "rtc",
  .reset = rtc_reset,
  .save = rtc_save,
  .load = rtc_load,
  .destroy = rtc_destroy,
};

void
vr_rtc_set_nvram (VrDevice *dev,
                  unsigned  index,
                  uint8_t   value)
{
  VrRtc *s = (VrRtc *) dev;

  g_return_if_fail (index >= 0x0e && index < sizeof s->cmos && index != REG_CENTURY);

  g_mutex_lock (&s->lock);
  s->cmos[index] = value;
  g_mutex_unlock (&s->lock);
}

VrDevice *
vr_rtc_new (VrBus        *pio,
            VrIrqChip    *irq,
            VrMemory     *memory,
            GMainContext *io_context,
            GError      **error)
{
  VrRtc *s;

  g_return_val_if_fail (pio != NULL, NULL);

  s = g_new0 (VrRtc, 1);
  s->parent.ops = &rtc_ops;
  g_mutex_init (&s->lock);
  s->pio = pio;
  s->irq = irq;
  s->cmos[REG_A] = A_DV_NORMAL | 0x06;  /* 32.768 kHz, 1024 Hz periodic rate */
  s->cmos[REG_B] = B_24H;
  s->flags_time = rtc_now (s);
  rtc_fill_time (s, rtc_now (s));
  rtc_fill_memory (s, memory);

  if (!vr_bus_register (pio, VR_RTC_BASE, 2, rtc_io, s, "rtc", error))
    {
      g_mutex_clear (&s->lock);
      g_free (s);
      return NULL;
    }

  if (io_context)
    {
      RtcTimerSource *ts;

      s->timer = g_source_new ((GSourceFuncs *) &rtc_timer_funcs, sizeof (RtcTimerSource));
      ts = (RtcTimerSource *) s->timer;
      g_mutex_init (&ts->lock);
      ts->rtc = s;
      g_source_set_name (s->timer, "vireo-rtc");
      g_source_set_ready_time (s->timer, -1);
      g_source_attach (s->timer, io_context);
    }

  return &s->parent;
}
