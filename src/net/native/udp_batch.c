/*
 * udp_batch.node: many datagrams per system call for McastSocket on Linux. Sending uses UDP
 * generic segmentation offload (GSO); receiving uses recvmmsg(), polled on Node's event loop.
 *
 * Sending.
 * node:dgram makes one sendmsg() per datagram. For a multicast datagram on a veth, a bridge or a
 * NIC without offloads, that one call carries the whole transmit path: socket, IPv6, qdisc,
 * device: most of a bare sender's CPU per datagram (docs/benchmarks.md, "Batched system calls in
 * a transfer"). With UDP_SEGMENT (Linux >= 4.18) one sendmsg() hands the kernel up to 64
 * datagrams of equal size laid end to end (the last may be shorter); they go down the stack as
 * one packet and are split into ordinary datagrams at the device, in hardware or in software.
 * Receivers see ordinary datagrams.
 *
 * Receiving. node:dgram makes one recvmsg() per datagram and one JavaScript event (a Buffer and
 * an address object) per datagram. recvStart() takes the socket's file descriptor over from
 * libuv's UDP handle (McastSocket stops that handle's reading first) and polls it itself: on
 * each wake-up, recvmmsg() reads up to `batch` datagrams, which are copied end to end into one
 * fresh ArrayBuffer, and the callback gets (buffer, count) with their lengths in the shared
 * Int32Array `lengths` (-1 for a datagram longer than `slot`, which was truncated and is lost).
 *
 * Exports (used by src/net/native.ts and src/net/socket.ts, which validate arguments first):
 *   check(fd)                                    0 if fd is a connected AF_INET6 datagram socket,
 *                                                else -errno
 *   sendSegments(fd, datagrams, from, count, segmentSize)
 *                                                one sendmsg() of datagrams[from .. from+count-1]
 *                                                (Uint8Arrays, no copy) with UDP_SEGMENT =
 *                                                segmentSize when count > 1; returns count, or
 *                                                -errno (never blocks: MSG_DONTWAIT)
 *   recvStart(fd, slot, batch, lengths, callback) a handle (External) once polling started;
 *                                                throws on bad arguments or if libuv refuses
 *   recvStop(handle)                             stops polling; the callback is never called again
 *                                                (also when called from inside the callback)
 * Bad arguments throw a TypeError / RangeError; nothing here can crash the process.
 */
#define _GNU_SOURCE /* recvmmsg */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <node_api.h>
#include <uv.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* The kernel's UDP_MAX_SEGMENTS (64 before Linux 6.9) and the IPv6 payload limit. */
#define MAX_SEGMENTS 64
#define MAX_BYTES 65000

static napi_value number(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static int int_arg(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* 0 if fd is an AF_INET6 datagram socket, else -errno. */
static int udp6_socket(int fd) {
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return -errno;
  len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return -errno;
  return type == SOCK_DGRAM && domain == AF_INET6 ? 0 : -ENOTSOCK;
}

static napi_value check(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !int_arg(env, argv[0], &fd) || fd < 0) {
    napi_throw_type_error(env, NULL, "check(fd): fd must be a non-negative integer");
    return NULL;
  }
  int r = udp6_socket(fd);
  if (r != 0) return number(env, r);
  struct sockaddr_in6 peer;
  socklen_t len = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0) return number(env, -errno);
  return number(env, 0);
}

static napi_value send_segments(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd, from, count, seg;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !int_arg(env, argv[0], &fd) ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || !int_arg(env, argv[2], &from) ||
      !int_arg(env, argv[3], &count) || !int_arg(env, argv[4], &seg)) {
    napi_throw_type_error(env, NULL, "sendSegments(fd, datagrams, from, count, segmentSize): bad argument types");
    return NULL;
  }
  uint32_t length = 0;
  napi_get_array_length(env, argv[1], &length);
  if (fd < 0 || from < 0 || count < 1 || count > MAX_SEGMENTS || (uint32_t)from + (uint32_t)count > length || seg < 1 || seg > MAX_BYTES) {
    napi_throw_range_error(env, NULL, "sendSegments: fd, range or segment size out of bounds");
    return NULL;
  }
  struct iovec iov[MAX_SEGMENTS];
  size_t total = 0;
  for (int32_t i = 0; i < count; i++) {
    napi_value el;
    bool is_typed = false;
    napi_typedarray_type type;
    size_t n = 0;
    void *data = NULL;
    if (napi_get_element(env, argv[1], (uint32_t)(from + i), &el) != napi_ok || napi_is_typedarray(env, el, &is_typed) != napi_ok || !is_typed ||
        napi_get_typedarray_info(env, el, &type, &n, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "sendSegments: every datagram must be a Uint8Array");
      return NULL;
    }
    /* Every segment but the last has exactly segmentSize bytes; the last has 1 to segmentSize. */
    if (n < 1 || n > (size_t)seg || (i < count - 1 && n != (size_t)seg)) {
      napi_throw_range_error(env, NULL, "sendSegments: datagrams must have segmentSize bytes (the last may be shorter)");
      return NULL;
    }
    iov[i].iov_base = data;
    iov[i].iov_len = n;
    total += n;
  }
  if (total > MAX_BYTES) {
    napi_throw_range_error(env, NULL, "sendSegments: more than 65000 bytes in one call");
    return NULL;
  }
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = (size_t)count;
  if (count > 1) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &size, sizeof size);
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return number(env, r < 0 ? -errno : count);
}


/* ---- receiving ---- */

#define RX_MAX_BATCH 256
#define RX_MAX_SLOT 65536
/* recvmmsg() calls per wake-up before returning to the event loop (timers, other sockets). */
#define RX_ROUNDS 16

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref lengths_ref;
  int32_t *lengths;
  napi_async_context async;
  int fd;
  int slot;
  int batch;
  int active;
  unsigned char *ring;
  struct mmsghdr msgs[RX_MAX_BATCH];
  struct iovec iov[RX_MAX_BATCH];
} rx_t;

static void rx_free(uv_handle_t *handle) {
  rx_t *rx = (rx_t *)handle->data;
  napi_delete_reference(rx->env, rx->callback);
  napi_delete_reference(rx->env, rx->lengths_ref);
  napi_async_destroy(rx->env, rx->async);
  free(rx->ring);
  free(rx);
}

typedef struct {
  rx_t *rx;
} rx_box_t;

/* Stop polling; rx is freed in the close callback, on a later loop turn, so this is safe even
 * from inside rx_readable (the JavaScript callback may stop its own socket). */
static void rx_stop(rx_t *rx) {
  if (!rx->active) return;
  rx->active = 0;
  uv_poll_stop(&rx->poll);
  uv_close((uv_handle_t *)&rx->poll, rx_free);
}

/* The handle was garbage collected: stop polling if nobody did (a socket dropped unclosed). */
static void rx_box_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  rx_box_t *box = data;
  if (box->rx != NULL) rx_stop(box->rx);
  free(box);
}

static void rx_deliver(rx_t *rx, int n) {
  napi_env env = rx->env;
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    int truncated = (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    rx->lengths[i] = truncated ? -1 : (int32_t)rx->msgs[i].msg_len;
    if (!truncated) total += rx->msgs[i].msg_len;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  void *data = NULL;
  napi_value buffer, argv[2], callback, recv, result;
  if (napi_create_arraybuffer(env, total, &data, &buffer) == napi_ok) {
    unsigned char *out = data;
    for (int i = 0; i < n; i++) {
      if (rx->lengths[i] < 0) continue;
      memcpy(out, rx->ring + (size_t)i * (size_t)rx->slot, (size_t)rx->lengths[i]);
      out += rx->lengths[i];
    }
    argv[0] = buffer;
    argv[1] = number(env, n);
    napi_get_reference_value(env, rx->callback, &callback);
    napi_get_global(env, &recv); /* make_callback needs an object as `this` */
    /* make_callback: the callback runs like any I/O callback (microtasks and nextTicks after it). */
    napi_make_callback(env, rx->async, recv, callback, 2, argv, &result);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      /* a throwing callback: an uncaught exception, as from any other I/O callback */
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void rx_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  rx_t *rx = (rx_t *)handle->data;
  if (status < 0) return; /* a poll error: the next recvmmsg() reports it, or the socket is closing */
  for (int round = 0; round < RX_ROUNDS && rx->active; round++) {
    int n = recvmmsg(rx->fd, rx->msgs, (unsigned)rx->batch, MSG_DONTWAIT, NULL);
    if (n <= 0) break; /* EAGAIN: drained; any other error: node:dgram would drop it too */
    rx_deliver(rx, n);
    if (n < rx->batch) break;
  }
}

static napi_value recv_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd, slot, batch;
  napi_valuetype cbtype;
  bool is_typed = false;
  napi_typedarray_type ltype;
  size_t llen = 0;
  void *ldata = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !int_arg(env, argv[0], &fd) ||
      !int_arg(env, argv[1], &slot) || !int_arg(env, argv[2], &batch) || napi_is_typedarray(env, argv[3], &is_typed) != napi_ok ||
      !is_typed || napi_get_typedarray_info(env, argv[3], &ltype, &llen, &ldata, NULL, NULL) != napi_ok || ltype != napi_int32_array ||
      napi_typeof(env, argv[4], &cbtype) != napi_ok || cbtype != napi_function) {
    napi_throw_type_error(env, NULL, "recvStart(fd, slot, batch, lengths: Int32Array, callback): bad argument types");
    return NULL;
  }
  if (fd < 0 || slot < 64 || slot > RX_MAX_SLOT || batch < 1 || batch > RX_MAX_BATCH || llen < (size_t)batch) {
    napi_throw_range_error(env, NULL, "recvStart: fd, slot (64..65536), batch (1..256) or lengths out of bounds");
    return NULL;
  }
  int r = udp6_socket(fd);
  if (r != 0) {
    napi_throw_error(env, NULL, "recvStart: not an IPv6 datagram socket");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) {
    napi_throw_error(env, NULL, "recvStart: no event loop");
    return NULL;
  }
  rx_t *rx = calloc(1, sizeof *rx);
  unsigned char *ring = malloc((size_t)slot * (size_t)batch);
  if (rx == NULL || ring == NULL) {
    free(rx);
    free(ring);
    napi_throw_error(env, NULL, "recvStart: out of memory");
    return NULL;
  }
  rx->env = env;
  rx->fd = fd;
  rx->slot = slot;
  rx->batch = batch;
  rx->ring = ring;
  rx->lengths = ldata;
  for (int i = 0; i < batch; i++) {
    rx->iov[i].iov_base = ring + (size_t)i * (size_t)slot;
    rx->iov[i].iov_len = (size_t)slot;
    rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
    rx->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int e = uv_poll_init(loop, &rx->poll, fd);
  if (e != 0) {
    free(ring);
    free(rx);
    napi_throw_error(env, NULL, uv_strerror(e));
    return NULL;
  }
  rx->poll.data = rx;
  napi_value name;
  napi_create_string_utf8(env, "iotupd.recvmmsg", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &rx->async);
  napi_create_reference(env, argv[4], 1, &rx->callback);
  napi_create_reference(env, argv[3], 1, &rx->lengths_ref);
  e = uv_poll_start(&rx->poll, UV_READABLE, rx_readable);
  if (e != 0) {
    uv_close((uv_handle_t *)&rx->poll, rx_free);
    napi_throw_error(env, NULL, uv_strerror(e));
    return NULL;
  }
  rx->active = 1;
  /* The handle holds a box, not rx: rx is freed when polling stops, the box only when the
   * handle is garbage collected, so a stale or repeated recvStop finds rx == NULL. */
  rx_box_t *box = malloc(sizeof *box);
  napi_value handle;
  if (box == NULL || napi_create_external(env, box, rx_box_finalize, NULL, &handle) != napi_ok) {
    free(box);
    rx_stop(rx);
    napi_throw_error(env, NULL, "recvStart: out of memory");
    return NULL;
  }
  box->rx = rx;
  return handle;
}

static napi_value recv_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok ||
      t != napi_external || napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "recvStop(handle): not a recvStart handle");
    return NULL;
  }
  rx_box_t *box = p;
  if (box->rx != NULL) rx_stop(box->rx);
  box->rx = NULL;
  return NULL;
}

/* mallocArenaMax(n): mallopt(M_ARENA_MAX, n), as MALLOC_ARENA_MAX=n would have set at start-up;
 * returns 1 if glibc took it, 0 if not (or not glibc). */
static napi_value malloc_arena_max(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_range_error(env, NULL, "mallocArenaMax(n): n must be an integer >= 1");
    return NULL;
  }
#ifdef __GLIBC__
  return number(env, mallopt(M_ARENA_MAX, n) == 1 ? 1 : 0);
#else
  return number(env, 0);
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "check", NAPI_AUTO_LENGTH, check, NULL, &fn);
  napi_set_named_property(env, exports, "check", fn);
  napi_create_function(env, "sendSegments", NAPI_AUTO_LENGTH, send_segments, NULL, &fn);
  napi_set_named_property(env, exports, "sendSegments", fn);
  napi_create_function(env, "recvStart", NAPI_AUTO_LENGTH, recv_start, NULL, &fn);
  napi_set_named_property(env, exports, "recvStart", fn);
  napi_create_function(env, "recvStop", NAPI_AUTO_LENGTH, recv_stop, NULL, &fn);
  napi_set_named_property(env, exports, "recvStop", fn);
  napi_create_function(env, "mallocArenaMax", NAPI_AUTO_LENGTH, malloc_arena_max, NULL, &fn);
  napi_set_named_property(env, exports, "mallocArenaMax", fn);
  return exports;
}
