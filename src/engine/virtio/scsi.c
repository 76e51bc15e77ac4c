/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * virtio-scsi (virtio spec 5.6) with a single CD/DVD-ROM drive: target 0, LUN 0, the
 * MMC model of ../scsi/vr-scsi-cd.c. It is the machine's CD-ROM, for installers and
 * firmware to boot from.
 *
 * Why virtio-scsi and not AHCI with an ATAPI drive: it reuses the virtio transport and the
 * virtqueue code every other device here uses, already checked against hostile drivers;
 * there is no ATA register state machine, no PRD tables, no FIS areas to emulate; and both
 * firmware and guests drive it: SeaBIOS (1.16, Debian's bios.bin) has a virtio-scsi driver
 * that speaks the modern virtio-pci transport and boots El Torito images from it, and Linux
 * has virtio_scsi + sr_mod in every distribution's installer kernel.
 *
 * Queues: 0 control, 1 event, 2 requests (num_queues = 1).
 *  - Requests: the header (lun[8], tag, task_attr, prio, crn, cdb[cdb_size]) is read from
 *    the readable part; the writable part starts with the response (sense_len, resid,
 *    status_qualifier, status, response, sense[sense_size]), then the data-in buffer.
 *    cdb_size and sense_size are the driver's to change (below 256 and 65536, as the spec
 *    lets it); other configuration writes are undone. Data-out after the header is ignored:
 *    the drive has no command that takes any. A LUN other than target 0 LUN 0 (single level,
 *    peripheral or flat addressing; bytes 4-7 are not looked at) gets BAD_TARGET, a header
 *    shorter than 19 + cdb_size bytes FAILURE, a READ whose blocks do not fit the data-in
 *    buffer OVERRUN. Only a chain without room for the whole response breaks the device:
 *    there is nowhere to report the error.
 *  - The I/O thread pops requests and hands them to one worker thread, so the drive's reads
 *    never hold up the I/O thread (and never the vCPUs); the worker runs them in order and
 *    completes them itself. A reset or a snapshot's quiesce waits for what is in flight.
 *  - Control: task management functions answer FUNCTION COMPLETE (LOGICAL UNIT RESET and
 *    I_T NEXUS RESET reset the drive: the lock is released, a unit attention raised);
 *    asynchronous notification queries and subscriptions get no events. Control requests
 *    are short and run on the I/O thread.
 *  - Events: no feature that needs them is offered (HOTPLUG, CHANGE): the buffers the driver
 *    posts stay there. A media change reaches the guest as a UNIT ATTENTION and through GET
 *    EVENT STATUS NOTIFICATION, which Linux's sr polls, as with a real drive.
 *
 * Snapshots: the drive's state (see vr_scsi_cd_save()) and the driver's cdb_size and
 * sense_size, which are in the configuration the transport saves; quiesce waits for the
 * worker, so nothing is in flight when the state is taken.
 */

#include "scsi.h"

#include <linux/virtio_scsi.h>
#include <stddef.h>
#include <string.h>

#include "../hw/state.h"
#include "../scsi/vr-scsi-cd.h"

#define CTRL_QUEUE     0
#define EVENT_QUEUE    1
#define REQUEST_QUEUE  2
#define QUEUE_SIZE     128
#define SEG_MAX        (QUEUE_SIZE - 2)
#define MAX_SECTORS    0xffff /* 512-byte units: 32 MiB per command */
#define CMD_PER_LUN    64
#define CDB_SIZE_MAX   255
#define SENSE_SIZE_MAX 65535

/* Spec 5.6.6.2; the kernel's header only has the response's other name, VIRTIO_SCSI_S_OK. */
#ifndef VIRTIO_SCSI_S_FUNCTION_COMPLETE
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE 0
#endif

/* The fixed parts of the request and response, before cdb[] and sense[]. */
#define REQ_HEAD  offsetof (struct virtio_scsi_cmd_req, cdb)
#define RESP_HEAD offsetof (struct virtio_scsi_cmd_resp, sense)

G_STATIC_ASSERT (REQ_HEAD == 19);
G_STATIC_ASSERT (RESP_HEAD == 12);

typedef struct
{
  VrVirtio     vio;
  VrScsiCd    *cd;
  GThreadPool *pool;
  GMutex       inflight_lock;
  GCond        inflight_cond;
  unsigned     inflight;
  /* As the driver set them (VrVirtio.lock). */
  uint32_t cdb_size;
  uint32_t sense_size;
} VrVirtioScsi;

typedef struct
{
  VrVirtioScsi *scsi;
  VrVirtqueue  *vq;
  VrVirtqElem  *elem;
  uint32_t      cdb_size;
  uint32_t      sense_size;
} Request;

/* Is this the drive's address (target 0, LUN 0)? */
static bool
lun_ok (const uint8_t lun[8])
{
  if (lun[0] != 1 || lun[1] != 0)
    return false;
  /* Peripheral device addressing (bus 0) or flat space addressing, LUN 0. */
  return (lun[2] == 0x00 || lun[2] == 0x40) && lun[3] == 0;
}

/* The iovecs of @src from byte @skip on (the data-in buffer after the response). */
static struct iovec *
iov_tail (const struct iovec *src, unsigned n, size_t skip, unsigned *out_n)
{
  struct iovec *iov = g_new (struct iovec, MAX (n, 1));
  unsigned      out = 0;

  for (unsigned i = 0; i < n; i++)
    {
      size_t l = src[i].iov_len;

      if (skip >= l)
        {
          skip -= l;
          continue;
        }
      iov[out++] =
          (struct iovec){ .iov_base = (uint8_t *) src[i].iov_base + skip, .iov_len = l - skip };
      skip = 0;
    }
  *out_n = out;
  return iov;
}

/* ---- requests (worker thread) -------------------------------------------------------------- */

static void
run_request (gpointer data, gpointer user_data)
{
  g_autofree Request *req = data;
  VrVirtioScsi       *self = req->scsi;
  VrVirtqElem        *elem = req->elem;
  size_t              resp_len = RESP_HEAD + req->sense_size;
  size_t              data_len = (size_t) (elem->in_len - resp_len);
  g_autofree uint8_t *resp = g_malloc0 (resp_len);
  uint8_t             head[REQ_HEAD], cdb[CDB_SIZE_MAX];
  uint8_t             response = VIRTIO_SCSI_S_OK, status = 0;
  uint32_t            sense_len = 0;
  size_t              resid = data_len, written = 0;

  if (elem->out_len < REQ_HEAD + req->cdb_size)
    response = VIRTIO_SCSI_S_FAILURE;
  else
    {
      vr_iov_to_buf (elem->out, elem->n_out, 0, head, sizeof head);
      vr_iov_to_buf (elem->out, elem->n_out, REQ_HEAD, cdb, req->cdb_size);
      if (!lun_ok (head))
        response = VIRTIO_SCSI_S_BAD_TARGET;
    }

  if (response == VIRTIO_SCSI_S_OK)
    {
      g_autofree struct iovec *iov = NULL;
      VrScsiResult             result;
      unsigned                 n;

      iov = iov_tail (elem->in, elem->n_in, resp_len, &n);
      vr_scsi_cd_command (self->cd, cdb, req->cdb_size, iov, n, data_len, &result);
      if (result.overrun)
        response = VIRTIO_SCSI_S_OVERRUN;
      else
        {
          status = result.status;
          sense_len = MIN (result.sense_len, req->sense_size);
          memcpy (resp + RESP_HEAD, result.sense, sense_len);
          written = result.written;
          resid = result.residual;
        }
    }

  vr_pci_set_long (resp, offsetof (struct virtio_scsi_cmd_resp, sense_len), sense_len);
  vr_pci_set_long (resp, offsetof (struct virtio_scsi_cmd_resp, resid),
                   (uint32_t) MIN (resid, (size_t) UINT32_MAX));
  resp[offsetof (struct virtio_scsi_cmd_resp, status)] = status;
  resp[offsetof (struct virtio_scsi_cmd_resp, response)] = response;
  vr_iov_from_buf (elem->in, elem->n_in, 0, resp, resp_len);
  vr_virtq_complete (req->vq, elem, (uint32_t) MIN (resp_len + written, (size_t) UINT32_MAX));
  g_free (elem);

  g_mutex_lock (&self->inflight_lock);
  if (--self->inflight == 0)
    g_cond_broadcast (&self->inflight_cond);
  g_mutex_unlock (&self->inflight_lock);
}

static void
request_notify (VrVirtioScsi *self, VrVirtqueue *vq)
{
  VrVirtio *vio = &self->vio;
  uint32_t  cdb_size, sense_size;

  g_mutex_lock (&vio->lock);
  cdb_size = self->cdb_size;
  sense_size = self->sense_size;
  g_mutex_unlock (&vio->lock);

  do
    {
      VrVirtqElem *elem;

      vr_virtq_set_notification (vq, false);
      while ((elem = vr_virtq_pop (vq)) != NULL)
        {
          Request *req;

          if (elem->in_len < RESP_HEAD + (uint64_t) sense_size)
            {
              g_free (elem);
              vr_virtio_set_broken (vio, "a request without room for the response");
              return;
            }
          req = g_new (Request, 1);
          *req = (Request){ self, vq, elem, cdb_size, sense_size };
          g_mutex_lock (&self->inflight_lock);
          self->inflight++;
          g_mutex_unlock (&self->inflight_lock);
          g_thread_pool_push (self->pool, req, NULL);
        }
      vr_virtq_set_notification (vq, true);
    }
  while (vr_virtq_has_buffers (vq));
}

/* ---- control (I/O thread) ------------------------------------------------------------------ */

/* One control request; false if it is malformed (too short to answer). */
static bool
control_request (VrVirtioScsi *self, VrVirtqElem *elem, uint32_t *written)
{
  uint32_t type;

  if (elem->out_len < sizeof type)
    return false;
  vr_iov_to_buf (elem->out, elem->n_out, 0, &type, sizeof type);
  switch (GUINT32_FROM_LE (type))
    {
    case VIRTIO_SCSI_T_TMF:
      {
        struct virtio_scsi_ctrl_tmf_req  tmf;
        struct virtio_scsi_ctrl_tmf_resp resp = { .response = VIRTIO_SCSI_S_FUNCTION_COMPLETE };

        if (elem->out_len < sizeof tmf || elem->in_len < sizeof resp)
          return false;
        vr_iov_to_buf (elem->out, elem->n_out, 0, &tmf, sizeof tmf);
        if (!lun_ok (tmf.lun))
          resp.response = VIRTIO_SCSI_S_BAD_TARGET;
        else
          switch (GUINT32_FROM_LE (tmf.subtype))
            {
            case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
            case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
              vr_scsi_cd_reset (self->cd);
              break;
            case VIRTIO_SCSI_T_TMF_ABORT_TASK:
            case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
            case VIRTIO_SCSI_T_TMF_CLEAR_ACA:
            case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
            case VIRTIO_SCSI_T_TMF_QUERY_TASK:
            case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
              /* Commands run to completion in order: nothing is left to abort or to find. */
              break;
            default:
              resp.response = VIRTIO_SCSI_S_FUNCTION_REJECTED;
              break;
            }
        *written = (uint32_t) vr_iov_from_buf (elem->in, elem->n_in, 0, &resp, sizeof resp);
        return true;
      }

    case VIRTIO_SCSI_T_AN_QUERY:
    case VIRTIO_SCSI_T_AN_SUBSCRIBE:
      {
        struct virtio_scsi_ctrl_an_req  an;
        struct virtio_scsi_ctrl_an_resp resp = { .event_actual = 0, .response = VIRTIO_SCSI_S_OK };

        if (elem->out_len < sizeof an || elem->in_len < sizeof resp)
          return false;
        vr_iov_to_buf (elem->out, elem->n_out, 0, &an, sizeof an);
        if (!lun_ok (an.lun))
          resp.response = VIRTIO_SCSI_S_BAD_TARGET;
        *written = (uint32_t) vr_iov_from_buf (elem->in, elem->n_in, 0, &resp, sizeof resp);
        return true;
      }

    default:
      return false;
    }
}

static void
control_notify (VrVirtioScsi *self, VrVirtqueue *vq)
{
  VrVirtqElem *elem;
  bool         pushed = false;

  while ((elem = vr_virtq_pop (vq)) != NULL)
    {
      uint32_t written = 0;

      if (!control_request (self, elem, &written))
        {
          g_free (elem);
          vr_virtio_set_broken (&self->vio, "a malformed control request");
          break;
        }
      vr_virtq_push (vq, elem, written);
      g_free (elem);
      pushed = true;
    }
  if (pushed)
    vr_virtq_notify (vq);
}

/* ---- the device ----------------------------------------------------------------------------- */

static void
scsi_queue_notify (VrVirtio *vio, unsigned queue)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;
  VrVirtqueue  *vq = vr_virtio_get_queue (vio, queue);

  switch (queue)
    {
    case CTRL_QUEUE:
      control_notify (self, vq);
      break;
    case REQUEST_QUEUE:
      request_notify (self, vq);
      break;
    default:
      /* Event buffers wait for events we never send. */
      break;
    }
}

/* VrVirtio.lock held: the configuration with @cdb_size and @sense_size. */
static void
fill_config (VrVirtioScsi *self)
{
  VrVirtio *vio = &self->vio;

#define PUT32(field, v) vr_virtio_config_put32 (vio, offsetof (struct virtio_scsi_config, field), v)
#define PUT16(field, v) vr_virtio_config_put16 (vio, offsetof (struct virtio_scsi_config, field), v)
  PUT32 (num_queues, 1);
  PUT32 (seg_max, SEG_MAX);
  PUT32 (max_sectors, MAX_SECTORS);
  PUT32 (cmd_per_lun, CMD_PER_LUN);
  PUT32 (event_info_size, sizeof (struct virtio_scsi_event));
  PUT32 (sense_size, self->sense_size);
  PUT32 (cdb_size, self->cdb_size);
  PUT16 (max_channel, 0);
  PUT16 (max_target, 0);
  PUT32 (max_lun, 0);
#undef PUT32
#undef PUT16
}

static uint32_t
config_get32 (const uint8_t *config, size_t offset)
{
  return (uint32_t) config[offset] | (uint32_t) config[offset + 1] << 8 |
         (uint32_t) config[offset + 2] << 16 | (uint32_t) config[offset + 3] << 24;
}

/* VrVirtio.lock held. The driver may set sense_size and cdb_size; anything else it wrote is
 * put back, and so is a size we cannot honour. */
static void
scsi_config_write (VrVirtio *vio, uint32_t offset, uint32_t len)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;
  uint32_t      sense_size =
      config_get32 (vio->config, offsetof (struct virtio_scsi_config, sense_size));
  uint32_t cdb_size = config_get32 (vio->config, offsetof (struct virtio_scsi_config, cdb_size));

  if (sense_size <= SENSE_SIZE_MAX)
    self->sense_size = sense_size;
  if (cdb_size <= CDB_SIZE_MAX)
    self->cdb_size = cdb_size;
  fill_config (self);
}

/* Waits for every request handed to the worker: it completes them itself (response, used
 * entry, interrupt) without the I/O thread, so this may run there. */
static void
scsi_drain (VrVirtio *vio)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;

  g_mutex_lock (&self->inflight_lock);
  while (self->inflight > 0)
    g_cond_wait (&self->inflight_cond, &self->inflight_lock);
  g_mutex_unlock (&self->inflight_lock);
}

static void
scsi_reset (VrVirtio *vio)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;

  scsi_drain (vio);
  if (self->cd)
    vr_scsi_cd_reset (self->cd);
  g_mutex_lock (&vio->lock);
  self->cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
  self->sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
  if (vio->config)
    fill_config (self);
  g_mutex_unlock (&vio->lock);
}

/* Snapshot state, version 1: (version, the drive's state). */
#define SCSI_STATE_VERSION 1
#define SCSI_STATE_TYPE    "(qv)"

static GVariant *
scsi_save (VrVirtio *vio)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;

  return g_variant_new (SCSI_STATE_TYPE, SCSI_STATE_VERSION, vr_scsi_cd_save (self->cd));
}

static bool
scsi_load (VrVirtio *vio, GVariant *state, const uint8_t *config, GError **error)
{
  VrVirtioScsi        *self = (VrVirtioScsi *) vio;
  g_autoptr (GVariant) cd_state = NULL;
  uint32_t             sense_size, cdb_size;
  uint16_t             version;
  bool                 same;

  if (!vr_state_check (state, "virtio-scsi", SCSI_STATE_TYPE, SCSI_STATE_VERSION, error))
    return false;
  g_variant_get (state, SCSI_STATE_TYPE, &version, &cd_state);

  /* The configuration: what the driver may set within bounds, the rest ours. */
  sense_size = config_get32 (config, offsetof (struct virtio_scsi_config, sense_size));
  cdb_size = config_get32 (config, offsetof (struct virtio_scsi_config, cdb_size));
  if (sense_size > SENSE_SIZE_MAX || cdb_size > CDB_SIZE_MAX)
    return vr_state_fail (error, "virtio-scsi", "sense_size %u, cdb_size %u", sense_size, cdb_size);
  g_mutex_lock (&vio->lock);
  self->sense_size = sense_size;
  self->cdb_size = cdb_size;
  fill_config (self);
  same = memcmp (vio->config, config, vio->config_size) == 0;
  g_mutex_unlock (&vio->lock);
  if (!same)
    return vr_state_fail (error, "virtio-scsi",
                          "the configuration differs from the "
                          "snapshot's (another version of the device?)");

  return vr_scsi_cd_load (self->cd, cd_state, error);
}

static void
scsi_destroy (VrVirtio *vio)
{
  VrVirtioScsi *self = (VrVirtioScsi *) vio;

  if (self->pool)
    g_thread_pool_free (self->pool, FALSE, TRUE);
  vr_scsi_cd_free (self->cd);
  g_mutex_clear (&self->inflight_lock);
  g_cond_clear (&self->inflight_cond);
  g_free (self);
}

static const VrVirtioOps scsi_ops = {
  .name = "virtio-scsi",
  .device_id = VIRTIO_ID_SCSI,
  .pci_class = 0x010000, /* SCSI storage controller */
  .config_write = scsi_config_write,
  .queue_notify = scsi_queue_notify,
  .reset = scsi_reset,
  .quiesce = scsi_drain,
  .save = scsi_save,
  .load = scsi_load,
  .destroy = scsi_destroy,
};

VrDevice *
vr_virtio_scsi_new (const VrVirtioHost    *host,
                    const char            *iso_path,
                    VrVirtioScsiMediumFunc medium_changed,
                    gpointer               data,
                    GError               **error)
{
  VrVirtioScsi *self;
  VrVirtio     *vio;

  g_return_val_if_fail (host != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_new0 (VrVirtioScsi, 1);
  vio = &self->vio;
  g_mutex_init (&self->inflight_lock);
  g_cond_init (&self->inflight_cond);
  self->cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
  self->sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
  self->cd = vr_scsi_cd_new ();
  vr_scsi_cd_set_medium_callback (self->cd, medium_changed, data);
  if (iso_path != NULL && !vr_scsi_cd_set_medium (self->cd, iso_path, error))
    goto fail;

  /* One worker: the drive's commands run in order, reads off the I/O thread. */
  self->pool = g_thread_pool_new (run_request, self, 1, FALSE, error);
  if (self->pool == NULL || !vr_virtio_init (vio, &scsi_ops, host, 0, 3, QUEUE_SIZE,
                                             sizeof (struct virtio_scsi_config), error))
    goto fail;
  g_mutex_lock (&vio->lock);
  fill_config (self);
  g_mutex_unlock (&vio->lock);
  if (!vr_virtio_plug (vio, error))
    goto fail;
  return &vio->parent;

fail:
  if (vio->ops == NULL)
    scsi_destroy (vio);
  else
    vr_device_destroy (&vio->parent);
  return NULL;
}

bool
vr_virtio_scsi_change_medium (VrDevice *dev, const char *path, GError **error)
{
  VrVirtioScsi *self = (VrVirtioScsi *) dev;

  g_return_val_if_fail (dev != NULL, false);
  return vr_scsi_cd_set_medium (self->cd, path, error);
}

char *
vr_virtio_scsi_get_medium (VrDevice *dev)
{
  VrVirtioScsi *self = (VrVirtioScsi *) dev;

  g_return_val_if_fail (dev != NULL, NULL);
  return vr_scsi_cd_get_medium (self->cd);
}
