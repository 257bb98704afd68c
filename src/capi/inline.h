
/*
 * Request helpers. These are static inline, as in libaio 0.3.113, so a
 * program built with this header needs no symbol beyond libaio's own and runs
 * on Debian's libaio as on ours. The same helpers are also exported from the
 * library as real functions (version node LIBAIO_RS_1) for callers that cannot
 * use C inline functions; both follow src/prep.rs.
 */

/* Function pointer to void *: allowed by POSIX, flagged by -pedantic, hence __extension__. */
static inline void io_set_callback(struct iocb *iocb, io_callback_t cb)
{
	iocb->data = __extension__ (void *)cb;
}

/* Every prep helper starts from a zeroed iocb, then sets the command and fd. */
static inline void __io_prep(struct iocb *iocb, int fd, int op)
{
	memset(iocb, 0, sizeof(*iocb));
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = (short)op;
	iocb->aio_reqprio = 0;
}

static inline void __io_prep_rw(struct iocb *iocb, int fd, int op, void *buf,
				unsigned long count, long long offset)
{
	__io_prep(iocb, fd, op);
	iocb->u.c.buf = buf;
	iocb->u.c.nbytes = count;
	iocb->u.c.offset = offset;
}

static inline void io_prep_pread(struct iocb *iocb, int fd, void *buf, size_t count,
				 long long offset)
{
	__io_prep_rw(iocb, fd, IO_CMD_PREAD, buf, count, offset);
}

static inline void io_prep_pwrite(struct iocb *iocb, int fd, void *buf, size_t count,
				  long long offset)
{
	__io_prep_rw(iocb, fd, IO_CMD_PWRITE, buf, count, offset);
}

/* The vector forms keep the iovec array and count in u.c.buf and u.c.nbytes,
 * the same bytes as u.v.vec and u.v.nr. */
static inline void io_prep_preadv(struct iocb *iocb, int fd, const struct iovec *iov,
				  int iovcnt, long long offset)
{
	__io_prep_rw(iocb, fd, IO_CMD_PREADV, (void *)iov, (unsigned long)iovcnt, offset);
}

static inline void io_prep_pwritev(struct iocb *iocb, int fd, const struct iovec *iov,
				   int iovcnt, long long offset)
{
	__io_prep_rw(iocb, fd, IO_CMD_PWRITEV, (void *)iov, (unsigned long)iovcnt, offset);
}

static inline void io_prep_preadv2(struct iocb *iocb, int fd, const struct iovec *iov,
				   int iovcnt, long long offset, int flags)
{
	io_prep_preadv(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = (unsigned)flags;
}

static inline void io_prep_pwritev2(struct iocb *iocb, int fd, const struct iovec *iov,
				    int iovcnt, long long offset, int flags)
{
	io_prep_pwritev(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = (unsigned)flags;
}

static inline void io_prep_poll(struct iocb *iocb, int fd, int events)
{
	__io_prep(iocb, fd, IO_CMD_POLL);
	iocb->u.poll.events = events;
}

static inline void io_prep_fsync(struct iocb *iocb, int fd)
{
	__io_prep(iocb, fd, IO_CMD_FSYNC);
}

static inline void io_prep_fdsync(struct iocb *iocb, int fd)
{
	__io_prep(iocb, fd, IO_CMD_FDSYNC);
}

static inline int io_poll(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd,
			  int events)
{
	io_prep_poll(iocb, fd, events);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline int io_fsync(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd)
{
	io_prep_fsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline int io_fdsync(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd)
{
	io_prep_fdsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline void io_set_eventfd(struct iocb *iocb, int eventfd)
{
	iocb->u.c.flags |= IOCB_FLAG_RESFD;
	iocb->u.c.resfd = (unsigned)eventfd;
}

#ifdef __cplusplus
}
#endif

#endif /* __LIBAIO_H */
