/*
 * splitxen-fio-smoke: a do-nothing fio external ioengine.
 *
 * It proves the build plumbing (Debian's fio source in .deps/, config-host.h, the
 * FIO_IOOPS_VERSION handshake, engine options) and measures fio's own ceiling: every I/O
 * completes synchronously in ->queue without touching data, so the IOPS it reaches is the
 * most any engine can get out of fio on this machine.
 *
 *   fio --ioengine=external:$B/lib/splitxen-fio-smoke.so --name=t --size=1M --rw=randread
 *   fio --ioengine=external:$B/lib/splitxen-fio-smoke.so --name=t --smoke_size=2M ...
 *
 * Option smoke_size=<bytes>: the size the engine reports for each file (default: fio's
 * size= option), so a job can run without size= and the option's effect is visible in the
 * amount of I/O fio does.
 */
#include "fio.h"
#include "optgroup.h"

struct smoke_options {
    void *pad;                  /* fio treats off1 == 0 as "no offset": keep the field past it */
    unsigned long long size;
};

static struct fio_option smoke_opts[] = {
    {
        .name = "smoke_size",
        .lname = "splitxen smoke engine file size",
        .type = FIO_OPT_STR_VAL,
        .off1 = offsetof(struct smoke_options, size),
        .help = "Size the smoke engine reports for each file (bytes, k/m/g suffixes)",
        .def = "0",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    { .name = NULL },
};

static enum fio_q_status smoke_queue(struct thread_data *td, struct io_u *io_u)
{
    (void)td;
    io_u->error = 0;
    return FIO_Q_COMPLETED;
}

static int smoke_open_file(struct thread_data *td, struct fio_file *f)
{
    (void)td;
    (void)f;
    return 0;
}

static int smoke_close_file(struct thread_data *td, struct fio_file *f)
{
    (void)td;
    (void)f;
    return 0;
}

static int smoke_get_file_size(struct thread_data *td, struct fio_file *f)
{
    struct smoke_options *o = td->eo;
    unsigned long long sz = o && o->size ? o->size : td->o.size / (td->o.nr_files ? td->o.nr_files : 1);

    if (!sz) {
        td_verror(td, EINVAL, "smoke engine needs size= or smoke_size=");
        return 1;
    }
    f->real_file_size = sz;
    fio_file_set_size_known(f);
    return 0;
}

struct ioengine_ops ioengine = {
    .name = "splitxen-fio-smoke",
    .version = FIO_IOOPS_VERSION,
    .queue = smoke_queue,
    .open_file = smoke_open_file,
    .close_file = smoke_close_file,
    .get_file_size = smoke_get_file_size,
    .flags = FIO_SYNCIO | FIO_DISKLESSIO | FIO_NOEXTEND | FIO_FAKEIO,
    .options = smoke_opts,
    .option_struct_size = sizeof(struct smoke_options),
};
