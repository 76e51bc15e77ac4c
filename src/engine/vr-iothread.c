/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-iothread.h"

struct _VrIoThread
{
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
};

static gpointer
iothread_main (gpointer data)
{
  VrIoThread *self = data;

  g_main_context_push_thread_default (self->context);
  g_main_loop_run (self->loop);
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

VrIoThread *
vr_iothread_new (const char *name)
{
  VrIoThread *self = g_new0 (VrIoThread, 1);

  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->thread = g_thread_new (name, iothread_main, self);
  return self;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

void
vr_iothread_free (VrIoThread *self)
{
  if (self == NULL)
    return;
  g_main_context_invoke (self->context, quit_cb, self->loop);
  g_thread_join (self->thread);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_free (self);
}

GMainContext *
vr_iothread_get_context (VrIoThread *self)
{
  return self->context;
}
