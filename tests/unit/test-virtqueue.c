/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The split virtqueue walker against hostile drivers: every check in virtqueue.c has a case
 * here. The rings are built by hand in a real VrMemory.
 */

#include <string.h>

#include "virtio/virtio-private.h"
#include "vr-memory.h"

#define RAM        (16u << 20)
#define QSIZE      8
#define DESC_GPA   0x10000
#define AVAIL_GPA  0x11000
#define USED_GPA   0x12000
#define BUF_GPA    0x20000

typedef struct
{
  VrMemory    *mem;
  VrVirtio     vio;
  VrVirtqueue *vq;
} Fixture;

static const VrVirtioOps test_ops = { .name = "virtio-test" };

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  bool indirect = GPOINTER_TO_INT (data);

  f->mem = vr_memory_new (RAM, NULL);
  g_assert_nonnull (f->mem);
  memset (&f->vio, 0, sizeof f->vio);
  g_mutex_init (&f->vio.lock);
  f->vio.ops = &test_ops;
  f->vio.host.memory = f->mem;
  f->vq = vr_virtq_new (&f->vio, 0, QSIZE);
  f->vq->size = QSIZE;
  f->vq->desc_addr = DESC_GPA;
  f->vq->avail_addr = AVAIL_GPA;
  f->vq->used_addr = USED_GPA;
  g_assert_true (vr_virtq_enable (f->vq, false, indirect, NULL));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  vr_virtq_free (f->vq);
  g_mutex_clear (&f->vio.lock);
  vr_memory_free (f->mem);
}

static void
put_desc_at (Fixture *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
             uint16_t next)
{
  struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

  g_assert_true (vr_memory_write (f->mem, table + 16 * i, &d, sizeof d));
}

static void
put_desc (Fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
  put_desc_at (f, DESC_GPA, i, addr, len, flags, next);
}

/* Makes chain @head available as entry @slot and sets avail->idx to @idx. */
static void
offer (Fixture *f, unsigned slot, uint16_t head, uint16_t idx)
{
  g_assert_true (vr_memory_write (f->mem, AVAIL_GPA + 4 + 2 * slot, &head, 2));
  g_assert_true (vr_memory_write (f->mem, AVAIL_GPA + 2, &idx, 2));
}

static void
assert_broken (Fixture *f)
{
  g_test_expect_message ("vireo-engine", G_LOG_LEVEL_WARNING, "*the guest broke the device*");
  g_assert_null (vr_virtq_pop (f->vq));
  g_test_assert_expected_messages ();
  g_assert_true (f->vio.broken);
  /* Logged once; the queue stays stopped. */
  g_assert_null (vr_virtq_pop (f->vq));
  g_assert_false (vr_virtq_is_ready (f->vq));
}

static void
test_good_chain (Fixture *f, gconstpointer data)
{
  g_autofree VrVirtqElem *elem = NULL;
  uint16_t used_idx;
  uint32_t used[2];

  put_desc (f, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 3);
  put_desc (f, 3, BUF_GPA + 0x1000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
  put_desc (f, 5, BUF_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
  g_assert_null (vr_virtq_pop (f->vq));
  g_assert_false (vr_virtq_has_buffers (f->vq));
  offer (f, 0, 0, 1);
  g_assert_true (vr_virtq_has_buffers (f->vq));

  elem = vr_virtq_pop (f->vq);
  g_assert_nonnull (elem);
  g_assert_cmpuint (elem->head, ==, 0);
  g_assert_cmpuint (elem->n_out, ==, 1);
  g_assert_cmpuint (elem->n_in, ==, 2);
  g_assert_cmpuint (elem->out_len, ==, 16);
  g_assert_cmpuint (elem->in_len, ==, 513);
  g_assert_true (elem->out[0].iov_base == vr_memory_translate (f->mem, BUF_GPA, 16));
  g_assert_true (elem->in[1].iov_base == vr_memory_translate (f->mem, BUF_GPA + 0x2000, 1));
  g_assert_null (vr_virtq_pop (f->vq));

  /* Completion: the used ring gets (head, len) and its index moves; len is capped at the
   * writable size. */
  vr_virtq_push (f->vq, elem, 100000);
  g_assert_true (vr_memory_read (f->mem, USED_GPA + 2, &used_idx, 2));
  g_assert_true (vr_memory_read (f->mem, USED_GPA + 4, used, 8));
  g_assert_cmpuint (used_idx, ==, 1);
  g_assert_cmpuint (used[0], ==, 0);
  g_assert_cmpuint (used[1], ==, 513);
  g_assert_false (f->vio.broken);
}

static void
test_indirect (Fixture *f, gconstpointer data)
{
  g_autofree VrVirtqElem *elem = NULL;
  uint64_t table = 0x30000;

  put_desc_at (f, table, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
  put_desc_at (f, table, 1, BUF_GPA + 0x100, 4096, VRING_DESC_F_NEXT, 2);
  put_desc_at (f, table, 2, BUF_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
  put_desc (f, 2, table, 3 * 16, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 2, 1);
  elem = vr_virtq_pop (f->vq);
  g_assert_nonnull (elem);
  g_assert_cmpuint (elem->head, ==, 2);
  g_assert_cmpuint (elem->n_out, ==, 2);
  g_assert_cmpuint (elem->n_in, ==, 1);
  g_assert_cmpuint (elem->out_len, ==, 16 + 4096);
}

static void
test_indirect_not_negotiated (Fixture *f, gconstpointer data)
{
  put_desc_at (f, 0x30000, 0, BUF_GPA, 16, 0, 0);
  put_desc (f, 0, 0x30000, 16, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_indirect_nested (Fixture *f, gconstpointer data)
{
  put_desc_at (f, 0x30000, 0, 0x31000, 16, VRING_DESC_F_INDIRECT, 0);
  put_desc_at (f, 0x31000, 0, BUF_GPA, 16, 0, 0);
  put_desc (f, 0, 0x30000, 16, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_indirect_bad_length (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, 0x30000, 24, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_indirect_empty (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, 0x30000, 0, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_indirect_outside_ram (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, RAM - 8, 32, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_indirect_loop (Fixture *f, gconstpointer data)
{
  put_desc_at (f, 0x30000, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
  put_desc_at (f, 0x30000, 1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
  put_desc (f, 0, 0x30000, 32, VRING_DESC_F_INDIRECT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_loop (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
  put_desc (f, 1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_head_out_of_range (Fixture *f, gconstpointer data)
{
  offer (f, 0, QSIZE, 1);
  assert_broken (f);
}

static void
test_next_out_of_range (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 0xffff);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_buffer_outside_ram (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, RAM - 100, 200, 0, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_buffer_in_mmio_hole (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, 0xfee00000, 16, VRING_DESC_F_WRITE, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_buffer_wraps (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, G_MAXUINT64 - 8, 64, 0, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_read_after_write (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, BUF_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
  put_desc (f, 1, BUF_GPA, 16, 0, 0);
  offer (f, 0, 0, 1);
  assert_broken (f);
}

static void
test_avail_jump (Fixture *f, gconstpointer data)
{
  put_desc (f, 0, BUF_GPA, 16, 0, 0);
  offer (f, 0, 0, QSIZE + 1);
  assert_broken (f);
}

static void
test_zero_length (Fixture *f, gconstpointer data)
{
  g_autofree VrVirtqElem *elem = NULL;

  /* Allowed, and contributes nothing (even at an address outside RAM). */
  put_desc (f, 0, RAM * 2, 0, VRING_DESC_F_NEXT, 1);
  put_desc (f, 1, BUF_GPA, 8, VRING_DESC_F_WRITE, 0);
  offer (f, 0, 0, 1);
  elem = vr_virtq_pop (f->vq);
  g_assert_nonnull (elem);
  g_assert_cmpuint (elem->n_out, ==, 0);
  g_assert_cmpuint (elem->n_in, ==, 1);
}

static void
test_rings_outside_ram (void)
{
  VrMemory *mem = vr_memory_new (RAM, NULL);
  VrVirtio vio = { .ops = &test_ops };
  g_autoptr (GError) error = NULL;
  VrVirtqueue *vq;

  g_mutex_init (&vio.lock);
  vio.host.memory = mem;
  vq = vr_virtq_new (&vio, 0, QSIZE);
  vq->size = QSIZE;
  vq->desc_addr = RAM - 16;
  vq->avail_addr = AVAIL_GPA;
  vq->used_addr = USED_GPA;
  g_assert_false (vr_virtq_enable (vq, true, true, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  vq->desc_addr = DESC_GPA + 8;   /* misaligned */
  g_assert_false (vr_virtq_enable (vq, true, true, &error));
  g_clear_error (&error);

  vq->desc_addr = DESC_GPA;
  vq->size = 0;
  g_assert_false (vr_virtq_enable (vq, true, true, &error));
  g_clear_error (&error);

  vq->size = QSIZE - 2;   /* not a power of two (2.7) */
  g_assert_false (vr_virtq_enable (vq, true, true, &error));
  g_assert_nonnull (strstr (error->message, "power of two"));
  g_clear_error (&error);

  vq->size = QSIZE;
  g_assert_true (vr_virtq_enable (vq, true, true, &error));
  vr_virtq_free (vq);
  g_mutex_clear (&vio.lock);
  vr_memory_free (mem);
}

static void
test_iov_copy (void)
{
  uint8_t a[3], b[5], out[8];
  struct iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
  const uint8_t src[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

  g_assert_cmpuint (vr_iov_from_buf (iov, 2, 0, src, 8), ==, 8);
  g_assert_cmpuint (a[2], ==, 3);
  g_assert_cmpuint (b[0], ==, 4);
  g_assert_cmpuint (vr_iov_to_buf (iov, 2, 2, out, 8), ==, 6);
  g_assert_cmpmem (out, 6, src + 2, 6);
  g_assert_cmpuint (vr_iov_to_buf (iov, 2, 100, out, 8), ==, 0);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn, indirect) \
  g_test_add ("/virtqueue/" path, Fixture, GINT_TO_POINTER (indirect), fixture_set_up, fn, \
              fixture_tear_down)
  ADD ("good-chain", test_good_chain, 0);
  ADD ("indirect", test_indirect, 1);
  ADD ("indirect-not-negotiated", test_indirect_not_negotiated, 0);
  ADD ("indirect-nested", test_indirect_nested, 1);
  ADD ("indirect-bad-length", test_indirect_bad_length, 1);
  ADD ("indirect-empty", test_indirect_empty, 1);
  ADD ("indirect-outside-ram", test_indirect_outside_ram, 1);
  ADD ("indirect-loop", test_indirect_loop, 1);
  ADD ("loop", test_loop, 0);
  ADD ("head-out-of-range", test_head_out_of_range, 0);
  ADD ("next-out-of-range", test_next_out_of_range, 0);
  ADD ("buffer-outside-ram", test_buffer_outside_ram, 0);
  ADD ("buffer-in-mmio-hole", test_buffer_in_mmio_hole, 0);
  ADD ("buffer-wraps", test_buffer_wraps, 0);
  ADD ("read-after-write", test_read_after_write, 0);
  ADD ("avail-jump", test_avail_jump, 0);
  ADD ("zero-length", test_zero_length, 0);
#undef ADD
  g_test_add_func ("/virtqueue/rings-outside-ram", test_rings_outside_ram);
  g_test_add_func ("/virtqueue/iov-copy", test_iov_copy);
  return g_test_run ();
}
