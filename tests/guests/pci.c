/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pci: enumerates bus 0 through configuration mechanism #1 and prints every function;
 * 00.0 must be a host bridge (class 0x0600).
 */

#include "guest.h"

static uint32_t
conf_read (unsigned dev, unsigned fn, unsigned reg)
{
  outl (0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
  return inl (0xcfc);
}

int
guest_main (void)
{
  uint32_t id0, class0;
  int found = 0;

  printf ("pci test\n");
  printf ("boot: %s\n", boot_protocol_name ());
  for (unsigned dev = 0; dev < 32; dev++)
    for (unsigned fn = 0; fn < 8; fn++)
      {
        uint32_t id = conf_read (dev, fn, 0);
        uint32_t cls, hdr;

        if ((id & 0xffff) == 0xffff)
          {
            if (fn == 0)
              break;
            continue;
          }
        cls = conf_read (dev, fn, 8);
        hdr = conf_read (dev, fn, 0xc) >> 16 & 0xff;
        printf ("info: 00:%02x.%u %04x:%04x class %04x\n", dev, fn, id & 0xffff, id >> 16,
                cls >> 16);
        found++;
        if (fn == 0 && !(hdr & 0x80))
          break;
      }
  printf ("info: %d functions\n", found);

  id0 = conf_read (0, 0, 0);
  class0 = conf_read (0, 0, 8) >> 16;
  if ((id0 & 0xffff) == 0xffff)
    guest_fail ("nothing at 00:00.0");
  printf ("00:00.0 class %04x\n", class0);
  if (class0 != 0x0600)
    guest_fail ("00:00.0 is not a host bridge");
  printf ("host bridge: ok\n");
  return 0;
}
