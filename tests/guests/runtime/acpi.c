/* SPDX-License-Identifier: GPL-3.0-or-later */
/* ACPI table discovery for the test guests: RSDP, RSDT/XSDT, MADT, \_S5, power-off. */

#include "guest.h"

typedef struct __attribute__ ((packed))
{
  char     signature[8];
  uint8_t  checksum;
  char     oem_id[6];
  uint8_t  revision;
  uint32_t rsdt;
  uint32_t length;
  uint64_t xsdt;
  uint8_t  ext_checksum;
  uint8_t  reserved[3];
} Rsdp;

uint8_t
acpi_checksum (const void *p, size_t len)
{
  const uint8_t *b = p;
  uint8_t sum = 0;

  while (len--)
    sum += *b++;
  return sum;
}

static bool
rsdp_valid (const Rsdp *r)
{
  if (memcmp (r->signature, "RSD PTR ", 8) || acpi_checksum (r, 20))
    return false;
  if (r->revision >= 2 && (r->length < 36 || acpi_checksum (r, 36)))
    return false;
  return true;
}

static uint64_t
scan_rsdp (uintptr_t start, uintptr_t end)
{
  for (uintptr_t p = start; p + 20 <= end; p += 16)
    if (rsdp_valid ((const Rsdp *) p))
      return p;
  return 0;
}

uint64_t
acpi_find_rsdp (void)
{
  uint64_t hint = boot_rsdp_hint ();
  uintptr_t ebda;
  uint64_t r;

  if (hint && rsdp_valid ((const Rsdp *) (uintptr_t) hint))
    return hint;
  ebda = (uintptr_t) *(volatile uint16_t *) phys (0x40e) << 4;
  if (ebda >= 0x80000 && ebda < 0xa0000 && (r = scan_rsdp (ebda, ebda + 1024)))
    return r;
  return scan_rsdp (0xe0000, 0x100000);
}

/* index-th table with this signature (0 = first), from the XSDT if any, else the RSDT. */
const AcpiHeader *
acpi_find_table (const char sig[4], int index)
{
  const Rsdp *rsdp = (const Rsdp *) (uintptr_t) acpi_find_rsdp ();
  const AcpiHeader *root;
  bool x;
  int n;

  if (!rsdp)
    return NULL;
  x = rsdp->revision >= 2 && rsdp->xsdt;
  root = (const AcpiHeader *) (uintptr_t) (x ? rsdp->xsdt : rsdp->rsdt);
  n = (root->length - sizeof *root) / (x ? 8 : 4);
  for (int i = 0; i < n; i++)
    {
      const uint8_t *ents = (const uint8_t *) (root + 1);
      uint64_t a;
      const AcpiHeader *t;

      if (x)
        memcpy (&a, ents + 8 * i, 8);
      else
        {
          uint32_t a32;
          memcpy (&a32, ents + 4 * i, 4);
          a = a32;
        }
      t = (const AcpiHeader *) (uintptr_t) a;
      if (!memcmp (t->signature, sig, 4) && index-- == 0)
        return t;
    }
  return NULL;
}

bool
acpi_parse_madt (MadtInfo *info)
{
  const AcpiHeader *madt = acpi_find_table ("APIC", 0);
  const uint8_t *p, *end;

  memset (info, 0, sizeof *info);
  for (int i = 0; i < 16; i++)
    info->isa_gsi[i] = i;
  if (!madt || acpi_checksum (madt, madt->length))
    return false;
  memcpy (&info->lapic_addr, (const uint8_t *) madt + 36, 4);
  p = (const uint8_t *) madt + 44;
  end = (const uint8_t *) madt + madt->length;
  while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end)
    {
      switch (p[0])
        {
        case 0:                 /* processor local APIC */
          {
            uint32_t flags;
            memcpy (&flags, p + 4, 4);
            if ((flags & 1) && info->ncpus < MAX_CPUS)
              info->apic_ids[info->ncpus++] = p[3];
            break;
          }
        case 1:                 /* IOAPIC: the first one is enough here */
          if (!info->ioapic_addr)
            {
              memcpy (&info->ioapic_addr, p + 4, 4);
              memcpy (&info->ioapic_gsi_base, p + 8, 4);
            }
          break;
        case 2:                 /* interrupt source override */
          if (p[2] == 0 && p[3] < 16)
            {
              memcpy (&info->isa_gsi[p[3]], p + 4, 4);
              memcpy (&info->isa_flags[p[3]], p + 8, 2);
            }
          break;
        default:
          break;
        }
      p += p[1];
    }
  return true;
}

/* DSDT address from the FADT (X_DSDT when present). */
static const AcpiHeader *
find_dsdt (const AcpiHeader *fadt)
{
  const uint8_t *f = (const uint8_t *) fadt;
  uint64_t x = 0;
  uint32_t d;

  if (fadt->length >= 148)
    memcpy (&x, f + 140, 8);
  memcpy (&d, f + 40, 4);
  return (const AcpiHeader *) (uintptr_t) (x ? x : d);
}

/* One AML integer constant at *p: ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix. */
static bool
aml_integer (const uint8_t **p, const uint8_t *end, uint32_t *v)
{
  const uint8_t *q = *p;

  if (q >= end)
    return false;
  switch (q[0])
    {
    case 0x00: *v = 0; *p = q + 1; return true;
    case 0x01: *v = 1; *p = q + 1; return true;
    case 0xff: *v = 0xffffffff; *p = q + 1; return true;
    case 0x0a: if (q + 2 > end) return false; *v = q[1]; *p = q + 2; return true;
    case 0x0b: if (q + 3 > end) return false; *v = q[1] | q[2] << 8; *p = q + 3; return true;
    case 0x0c:
      if (q + 5 > end)
        return false;
      memcpy (v, q + 1, 4);
      *p = q + 5;
      return true;
    default:
      return false;
    }
}

bool
acpi_s5 (uint8_t *slp_typa, uint8_t *slp_typb)
{
  const AcpiHeader *fadt = acpi_find_table ("FACP", 0);
  const AcpiHeader *dsdt;
  const uint8_t *p, *end;

  if (!fadt)
    return false;
  dsdt = find_dsdt (fadt);
  if (!dsdt || memcmp (dsdt->signature, "DSDT", 4))
    return false;
  p = (const uint8_t *) (dsdt + 1);
  end = (const uint8_t *) dsdt + dsdt->length;
  for (; p + 4 < end; p++)
    {
      const uint8_t *q;
      uint32_t a, b;
      int lead;

      if (memcmp (p, "_S5_", 4))
        continue;
      /* NameOp, optionally with a root prefix, must precede the name. */
      if (!((p[-1] == 0x08) || (p[-1] == '\\' && p[-2] == 0x08)))
        continue;
      q = p + 4;
      if (q >= end || *q != 0x12)       /* PackageOp */
        continue;
      q++;
      lead = (*q >> 6) & 3;             /* PkgLength: extra bytes */
      q += 1 + lead;
      q++;                              /* NumElements */
      if (!aml_integer (&q, end, &a) || !aml_integer (&q, end, &b))
        return false;
      *slp_typa = a & 7;
      *slp_typb = b & 7;
      return true;
    }
  return false;
}

bool
acpi_poweroff (void)
{
  const AcpiHeader *fadt = acpi_find_table ("FACP", 0);
  const uint8_t *f = (const uint8_t *) fadt;
  uint8_t a, b;
  uint32_t cnt_a = 0, cnt_b = 0;

  if (!fadt || !acpi_s5 (&a, &b))
    return false;
  memcpy (&cnt_a, f + 64, 4);
  memcpy (&cnt_b, f + 68, 4);
  if (!cnt_a && fadt->length >= 184 && f[172] == 1)     /* X_PM1a_CNT_BLK in I/O space */
    memcpy (&cnt_a, f + 176, 4);
  if (!cnt_a)
    return false;
  irq_disable ();
  if (cnt_b)
    outw (cnt_b, (uint16_t) (b << 10 | 1 << 13));
  outw (cnt_a, (uint16_t) (a << 10 | 1 << 13));
  /* Give the machine a moment to go away. */
  for (int i = 0; i < 100; i++)
    pit_delay_ms (10);
  return false;
}
