/*
 * The save and migration stream: what `splitxen save` writes to a file and `splitxen migrate`
 * sends over TCP. A versioned header, then records, each compressed with zlib and checked with
 * crc32, then an END record that checks the whole stream. All integers little-endian.
 *
 *   header, 32 bytes:  "SXSTREAM", u32 version (SXM_VERSION), u32 flags (SXM_F_*),
 *                      u64 0, u32 crc32 of the 24 bytes before, u32 0
 *   record header, 24 bytes:
 *                      u32 type, u32 flags (SXM_RF_ZLIB: the payload is deflated),
 *                      u32 raw length (<= SXM_MAX_PAYLOAD), u32 wire length (what follows),
 *                      u32 crc32 of the raw payload, u32 crc32 of the 20 bytes before it
 *   payload:           wire length bytes
 *   END:               a record of type SXM_REC_END whose payload is
 *                      u32 crc32 of every stream byte before its own header, u32 0,
 *                      u64 number of records before it
 * A reader checks each piece before it believes a length in it, and refuses the stream with a
 * message naming the record (by number, type and byte offset) and what is wrong: bad magic,
 * another version, a header or payload checksum, a length out of range, a payload that does
 * not inflate to its length, an end before END (truncated), data after END. What the payloads
 * hold is domstate.h's.
 *
 * The receiver of a migration answers on the same socket with fixed messages (struct sxm_msg).
 * Functions return 0 (or a count) or -errno; readers also fill an error message.
 */
#ifndef SPLITXEN_XEN_CORE_STREAM_H
#define SPLITXEN_XEN_CORE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SXM_MAGIC "SXSTREAM"
#define SXM_VERSION 1u
#define SXM_HDR_SIZE 32u
#define SXM_REC_HDR_SIZE 24u
#define SXM_MAX_PAYLOAD (8u << 20)

#define SXM_F_LIVE 0x1u         /* pre-copy rounds: page records may repeat a frame */
#define SXM_RF_ZLIB 0x1u

enum sxm_type {
    SXM_REC_DOMAIN = 1,         /* struct sxm_domain: what to create */
    SXM_REC_CONFIG = 2,         /* the domain's xl.cfg, as text */
    SXM_REC_XENSTORE = 3,       /* the guest's own xenstore nodes */
    SXM_REC_PAGES = 4,          /* guest frames */
    SXM_REC_PAGE_ALLOC = 5,     /* the guest's frame allocator */
    SXM_REC_GRANTS = 6,         /* the guest's grant table */
    SXM_REC_EVTCHN = 7,         /* event channel bindings */
    SXM_REC_END = 8,
    SXM_REC_SYNC = 9,           /* migration only, empty: answer SYNCED once all before it is in */
    SXM_REC_MAX = SXM_REC_SYNC,
};

const char *sxm_type_name(uint32_t type);

struct sxm_writer;
struct sxm_reader;

/* Write the header to fd (a file or a socket; the writer never closes it). level: zlib
 * compression level (1 = fastest). */
int sxm_writer_open(struct sxm_writer **out, int fd, uint32_t flags, int level);
/* One record. Compressed when that makes it smaller; after a record deflate could not shrink
 * by an eighth, the next 16 are stored without trying. -EMSGSIZE over SXM_MAX_PAYLOAD, -EIO
 * after an earlier failure, else the write's -errno. */
int sxm_write(struct sxm_writer *w, uint32_t type, const void *buf, size_t len);
/* The END record. */
int sxm_writer_finish(struct sxm_writer *w);
void sxm_writer_close(struct sxm_writer *w);              /* NULL-safe */
/* Bytes written so far, and of them payload bytes before compression. */
uint64_t sxm_writer_bytes(const struct sxm_writer *w);
uint64_t sxm_writer_raw_bytes(const struct sxm_writer *w);

/* Read and check the header. On failure err says why. */
int sxm_reader_open(struct sxm_reader **out, int fd, char *err, size_t errlen);
/* The next record, checked and inflated: *buf (the reader's; valid until the next call) and
 * *len. Returns 1 for a record, 0 at a good END (with `trailing`: nothing may follow), or
 * -errno with the reason in the reader's error (sxm_reader_error): -EPROTO for a bad stream,
 * -ENODATA when it ends early, the read's -errno otherwise. */
int sxm_read(struct sxm_reader *r, uint32_t *type, const void **buf, size_t *len);
const char *sxm_reader_error(const struct sxm_reader *r);
uint32_t sxm_reader_flags(const struct sxm_reader *r);
uint64_t sxm_reader_bytes(const struct sxm_reader *r);
/* Refuse bytes after END (a file); a socket leaves them for the caller. Default: refuse. */
void sxm_reader_allow_trailing(struct sxm_reader *r, bool allow);
void sxm_reader_close(struct sxm_reader *r);              /* NULL-safe */

/* Receiver -> sender (and the sender's go-ahead): one fixed, checksummed message. */
enum sxm_msg_code {
    SXM_MSG_READY = 1,          /* receiver: everything is in, the domain paused (domid, core) */
    SXM_MSG_GO = 2,             /* sender: the source is out of the way, start it */
    SXM_MSG_DONE = 3,           /* receiver: the domain runs */
    SXM_MSG_FAIL = 4,           /* either side: rc and text say why */
    SXM_MSG_SYNCED = 5,         /* receiver: every record before the SYNC record is in (the
                                   sender stops the guest only after this: building the
                                   domain and taking in the pre-copy take a while) */
};
struct sxm_msg {
    uint32_t code;
    int32_t rc;
    uint32_t domid;
    char core_path[128];        /* READY: the receiving core's socket */
    char text[128];             /* FAIL: the reason */
};
int sxm_msg_send(int fd, const struct sxm_msg *m);
/* Wait up to timeout_ms (< 0: forever). -ETIMEDOUT, -ECONNRESET (peer gone), -EPROTO. */
int sxm_msg_recv(int fd, struct sxm_msg *m, int timeout_ms);

#endif
