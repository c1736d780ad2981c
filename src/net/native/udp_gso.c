/*
 * udp_gso.node: UDP generic segmentation offload (GSO) for McastSocket on Linux.
 *
 * node:dgram makes one sendmsg() per datagram. For a multicast datagram on a veth, a bridge or a
 * NIC without offloads, that one call carries the whole transmit path: socket, IPv6, qdisc,
 * device (about 25 us here, docs/lab.md). With UDP_SEGMENT (Linux >= 4.18) one sendmsg() hands
 * the kernel up to 64 datagrams of equal size laid end to end (the last may be shorter); they go
 * down the stack as one packet and are split into ordinary datagrams at the device, in hardware
 * or in software. Receivers see ordinary datagrams.
 *
 * Exports (used by src/net/gso.ts, which validates the arguments before calling):
 *   check(fd)                                    0 if fd is a connected AF_INET6 datagram socket,
 *                                                else -errno
 *   sendSegments(fd, datagrams, from, count, segmentSize)
 *                                                one sendmsg() of datagrams[from .. from+count-1]
 *                                                (Uint8Arrays, no copy) with UDP_SEGMENT =
 *                                                segmentSize when count > 1; returns count, or
 *                                                -errno (never blocks: MSG_DONTWAIT)
 * Bad arguments throw a TypeError / RangeError; nothing here can crash the process.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <node_api.h>

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

static napi_value check(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !int_arg(env, argv[0], &fd) || fd < 0) {
    napi_throw_type_error(env, NULL, "check(fd): fd must be a non-negative integer");
    return NULL;
  }
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return number(env, -errno);
  len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return number(env, -errno);
  if (type != SOCK_DGRAM || domain != AF_INET6) return number(env, -ENOTSOCK);
  struct sockaddr_in6 peer;
  len = sizeof peer;
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

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "check", NAPI_AUTO_LENGTH, check, NULL, &fn);
  napi_set_named_property(env, exports, "check", fn);
  napi_create_function(env, "sendSegments", NAPI_AUTO_LENGTH, send_segments, NULL, &fn);
  napi_set_named_property(env, exports, "sendSegments", fn);
  return exports;
}
